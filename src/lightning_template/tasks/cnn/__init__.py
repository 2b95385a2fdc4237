"""The image classifier: a small residual network on 32x32 images (an embedded synthetic set, CIFAR-10).

``TERMS``: words that say this task, besides its name and its own class and function names;
neither the shared files nor another task's use them.
"""

TERMS = ("cifar", "cifar10", "image classifier", "image classification")
