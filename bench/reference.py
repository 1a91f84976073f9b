"""The reference every benchmark figure is a ratio against.

A faithful re-implementation of pytorch/examples ``fast_neural_style``
(neural_style/transformer_net.py, vgg.py and the training loop of
neural_style.py), ConvTranspose-free version: ``UpsampleConvLayer`` with
``nn.functional.interpolate``, affine ``InstanceNorm2d``, ``ReflectionPad2d``,
unbounded output. Random weights (speed does not depend on them), eager fp32.
Nothing here is used by the library.
"""
from __future__ import annotations

from collections import namedtuple

import torch
from torch import nn


class ConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + residual


class UpsampleConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, upsample=None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    """pytorch/examples' network (1,679,235 parameters); input 0..255, output unbounded."""

    def __init__(self):
        super().__init__()
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res1(y)
        y = self.res2(y)
        y = self.res3(y)
        y = self.res4(y)
        y = self.res5(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


class Vgg16(nn.Module):
    """torchvision vgg16().features[:23] sliced as pytorch/examples does (random weights)."""

    def __init__(self):
        super().__init__()
        cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
        layers, in_channels = [], 3
        for spec in cfg:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, spec, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = spec
        features = nn.Sequential(*layers)
        self.slice1 = nn.Sequential(*[features[i] for i in range(4)])
        self.slice2 = nn.Sequential(*[features[i] for i in range(4, 9)])
        self.slice3 = nn.Sequential(*[features[i] for i in range(9, 16)])
        self.slice4 = nn.Sequential(*[features[i] for i in range(16, 23)])
        for param in self.parameters():
            param.requires_grad = False

    def forward(self, X: torch.Tensor):
        h = self.slice1(X)
        h_relu1_2 = h
        h = self.slice2(h)
        h_relu2_2 = h
        h = self.slice3(h)
        h_relu3_3 = h
        h = self.slice4(h)
        h_relu4_3 = h
        return namedtuple("VggOutputs", ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])(
            h_relu1_2, h_relu2_2, h_relu3_3, h_relu4_3)


def gram_matrix(y: torch.Tensor) -> torch.Tensor:
    (b, ch, h, w) = y.size()
    features = y.view(b, ch, w * h)
    features_t = features.transpose(1, 2)
    return features.bmm(features_t) / (ch * h * w)


def normalize_batch(batch: torch.Tensor) -> torch.Tensor:
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


class ReferenceTrainer:
    """One optimisation step of pytorch/examples' ``train()`` (batch of 0..255 images)."""

    def __init__(self, style_size: int = 256, content_weight: float = 1e5, style_weight: float = 1e10,
                 lr: float = 1e-3, batch_size: int = 4):
        self.transformer = TransformerNet()
        self.optimizer = torch.optim.Adam(self.transformer.parameters(), lr)
        self.vgg = Vgg16()
        self.mse_loss = nn.MSELoss()
        self.content_weight, self.style_weight = content_weight, style_weight
        style = (torch.rand(1, 3, style_size, style_size) * 255).repeat(batch_size, 1, 1, 1)
        features_style = self.vgg(normalize_batch(style))
        self.gram_style = [gram_matrix(y) for y in features_style]

    def step(self, x: torch.Tensor) -> float:
        n_batch = len(x)
        self.optimizer.zero_grad()
        y = self.transformer(x)
        y = normalize_batch(y)
        x = normalize_batch(x.clone())
        features_y = self.vgg(y)
        features_x = self.vgg(x)
        content_loss = self.content_weight * self.mse_loss(features_y.relu2_2, features_x.relu2_2)
        style_loss = 0.0
        for ft_y, gm_s in zip(features_y, self.gram_style):
            gm_y = gram_matrix(ft_y)
            style_loss += self.mse_loss(gm_y, gm_s[:n_batch, :, :])
        style_loss *= self.style_weight
        total_loss = content_loss + style_loss
        total_loss.backward()
        self.optimizer.step()
        return total_loss.item()
