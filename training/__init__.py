"""Builds and judges the model that ships in ``models/``: data, augmentation, architectures,
training, evaluation, the model study, the model card's tables, the localisation check, the
FracAtlas split and the radiograph check's reference.

Every CLI runs as ``python -m training.NAME``. ``training`` imports ``core`` (one preprocessing
path, one reader of ``models/``); ``core`` never imports ``training``.
"""
