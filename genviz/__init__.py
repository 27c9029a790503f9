"""genviz: see what an image classifier has learned by generating the images it likes best."""

__version__ = "0.1.0"
