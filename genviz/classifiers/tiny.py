"""A small random CNN for tests and quick experiments (``classifier=tiny``)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_classifier
from .wrapper import Classifier


class TinyNet(nn.Module):
    """A small random CNN for tests and quick experiments."""

    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        w = width
        self.conv1, self.relu1 = nn.Conv2d(3, w, 3, padding=1), nn.ReLU(inplace=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2, self.relu2 = nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3, self.relu3 = nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(inplace=True)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.relu4 = nn.Linear(4 * w, 4 * w), nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.gap(self.relu3(self.conv3(x))).flatten(1)
        return self.fc2(self.drop(self.relu4(self.fc1(x))))


@register_classifier("tiny")
def tiny(
    num_classes: int = 10,
    width: int = 8,
    input_size: int = 32,
    seed: int = 0,
    head: str = "relu",
    dropout: bool = False,
):
    gen = torch.random.fork_rng(devices=[])  # built on the CPU: only its generator is forked
    with gen:
        torch.manual_seed(seed)
        model = TinyNet(num_classes, width)
    aliases = {"relu1": "relu1", "relu2": "relu2", "relu3": "relu3", "fc1": "relu4", "fc2": "fc2"}
    return Classifier(model, input_size=input_size, aliases=aliases, head=head, dropout=dropout, name="tiny")
