"""Pure TensorFlow/Keras trainer for CIFAR-10-style image classification.

Importing the package is cheap: TensorFlow loads only when a training module is imported,
and the job spec it reads lives in `tass.contract.spec`, which the API shares.
"""
