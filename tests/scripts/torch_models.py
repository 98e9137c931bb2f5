"""PyTorch reference models, written from DC-bench's networks.py / BEARD's get_network
(ConvNet and its named variants), so that beard's C models can be checked against the
same architecture in PyTorch. Used by the fixture scripts and scripts/bench_torch.py."""
import torch
import torch.nn as nn


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class ConvNet(nn.Module):
    def __init__(self, channel, num_classes, net_width=128, net_depth=3, net_act="relu",
                 net_norm="instancenorm", net_pooling="avgpooling", im_size=(32, 32)):
        super().__init__()
        self.features, shape_feat = self._make_layers(channel, net_width, net_depth, net_norm,
                                                      net_act, net_pooling, im_size)
        num_feat = shape_feat[0] * shape_feat[1] * shape_feat[2]
        self.classifier = nn.Linear(num_feat, num_classes)

    def forward(self, x):
        out = self.features(x)
        out = out.view(out.size(0), -1)
        return self.classifier(out)

    @staticmethod
    def _act(net_act):
        return {"sigmoid": nn.Sigmoid(), "relu": nn.ReLU(inplace=True),
                "leakyrelu": nn.LeakyReLU(negative_slope=0.01), "swish": Swish()}[net_act]

    @staticmethod
    def _norm(net_norm, shape_feat):
        if net_norm == "batchnorm":
            return nn.BatchNorm2d(shape_feat[0], affine=True)
        if net_norm == "layernorm":
            return nn.LayerNorm(shape_feat, elementwise_affine=True)
        if net_norm == "instancenorm":
            return nn.GroupNorm(shape_feat[0], shape_feat[0], affine=True)
        if net_norm == "groupnorm":
            return nn.GroupNorm(4, shape_feat[0], affine=True)
        raise ValueError(net_norm)

    def _make_layers(self, channel, net_width, net_depth, net_norm, net_act, net_pooling, im_size):
        layers = []
        in_channels = channel
        if im_size[0] == 28:
            im_size = (32, 32)
        shape_feat = [in_channels, im_size[0], im_size[1]]
        for d in range(net_depth):
            layers += [nn.Conv2d(in_channels, net_width, kernel_size=3,
                                 padding=3 if channel == 1 and d == 0 else 1)]
            shape_feat[0] = net_width
            if net_norm != "none":
                layers += [self._norm(net_norm, shape_feat)]
            layers += [self._act(net_act)]
            in_channels = net_width
            if net_pooling != "none":
                layers += [nn.MaxPool2d(2, 2) if net_pooling == "maxpooling" else nn.AvgPool2d(2, 2)]
                shape_feat[1] //= 2
                shape_feat[2] //= 2
        return nn.Sequential(*layers), shape_feat


VARIANTS = {
    "ConvNet": {}, "ConvNetD1": {"net_depth": 1}, "ConvNetD2": {"net_depth": 2},
    "ConvNetD3": {"net_depth": 3}, "ConvNetD4": {"net_depth": 4}, "ConvNetD5": {"net_depth": 5},
    "ConvNetW32": {"net_width": 32}, "ConvNetW64": {"net_width": 64}, "ConvNetW256": {"net_width": 256},
    "ConvNetAS": {"net_act": "sigmoid"}, "ConvNetAL": {"net_act": "leakyrelu"},
    "ConvNetASwish": {"net_act": "swish"},
    "ConvNetNN": {"net_norm": "none"}, "ConvNet_BN": {"net_norm": "batchnorm"},
    "ConvNetBN": {"net_norm": "batchnorm"}, "ConvNet_LN": {"net_norm": "layernorm"},
    "ConvNetLN": {"net_norm": "layernorm"}, "ConvNet_GN": {"net_norm": "groupnorm"},
    "ConvNetGN": {"net_norm": "groupnorm"}, "ConvNetNP": {"net_pooling": "none"},
    "ConvNetMP": {"net_pooling": "maxpooling"},
}


def get_network(arch, channel=3, num_classes=10, im_size=(32, 32)):
    return ConvNet(channel, num_classes, im_size=im_size, **VARIANTS[arch])


CIFAR10_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR10_STD = [0.2023, 0.1994, 0.2010]


class Normalized(nn.Module):
    """pixel semantics: the model takes [0, 1] pixels and normalises itself"""

    def __init__(self, net, mean=CIFAR10_MEAN, std=CIFAR10_STD):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).reshape(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)
