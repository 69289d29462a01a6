#!/usr/bin/env bash
# Type-checks every package with mypy (configuration: [tool.mypy] in pyproject.toml).
#
# How mypy finds `tass.core` & co: the folders sit at the top of the repository (core/, api/, ...)
# and setuptools' package-dir maps them to `tass.*`; the editable install does that with an import
# hook, which mypy does not run (it reads files, it never imports). So this script builds the
# layout mypy can read, build/typecheck/tass/<package> -> <package>/ as relative symlinks (build/
# is ignored by git), and the configuration's mypy_path points there; errors name the real files.
# Extra arguments go to mypy's run over the packages; a second run checks the benchmarks.
#
# It also refuses a `# type: ignore` that has no error code or no reason after it:
#     x = f()  # type: ignore[arg-type]  # the stub says str, the library accepts bytes too
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(contract core api worker trainer client operators serving migrations)
tree=build/typecheck/tass
rm -rf build/typecheck
mkdir -p "$tree"
for package in "${packages[@]}"; do
  ln -s "../../../$package" "$tree/$package"
done

unexplained=$(grep -rn --include='*.py' '# type: ignore' "${packages[@]}" benchmarks |
  grep -vE '# type: ignore\[[a-z-]+(, *[a-z-]+)*\] +# +[^ ]' || true)
if [ -n "$unexplained" ]; then
  echo "a '# type: ignore' needs an error code and a reason ('# type: ignore[code]  # why'):" >&2
  echo "$unexplained" >&2
  exit 1
fi

status=0
.venv/bin/mypy "$@" | sed "s#^${tree}/##" || status=1
# The benchmarks are scripts run from their folder (`import common`) that also use tests/support;
# what they import is checked against but not reported again (silent).
MYPYPATH=benchmarks:. .venv/bin/mypy --explicit-package-bases --follow-imports=silent benchmarks ||
  status=1
exit "$status"
