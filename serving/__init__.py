"""The serving process: loads trained models (sha256-checked, Keras safe mode), keeps the most
recently used ones warm, batches concurrent requests and answers predictions over HTTP on
loopback. The API forwards `POST /v1/models/{ref}/predict` here; it never loads a model."""
