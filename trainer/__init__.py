"""Pure TensorFlow/Keras trainer for CIFAR-10-style image classification.

Importing the package is cheap: TensorFlow loads only when a training module is imported,
so `trainer.spec` can be shared with the API process.
"""
