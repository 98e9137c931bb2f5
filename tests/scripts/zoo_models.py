"""PyTorch reference definitions of beard's model zoo (src/models), written from the
original repositories so that the C models can be checked against them:

- DC's MLP, LeNet, AlexNet(BN), VGG11(BN), ResNet18(BN)(_AP): BEARD's Code/dc_networks.py
  (= DC's networks.py). Where DC hard-codes a classifier's input for 32x32, these take it
  from the feature map (as beard does); at 28 px (1 channel) and 32 px that is DC's number.
- torchvision's ResNet-18/50 with SRe2L's CIFAR modification (squeeze_cifar.py): torchvision
  itself, conv1 replaced by a 3x3 stride-1 conv, maxpool by an identity.
- G-VBSM's CIFAR teachers (Branch_CIFAR_10/recover/models): MobileNetV2 (mobile_half),
  WRN_16_2, ShuffleNetV2_0_5.

Module names equal the originals', so state_dicts are interchangeable. build(name, channel,
num_classes, im_size) makes any of them by beard's name."""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def _feat_size(features, channel, im_size):
    with torch.no_grad():
        was = features.training
        features.eval()
        n = features(torch.zeros(1, channel, im_size, im_size)).numel()
        features.train(was)
    return n


# ----------------------------------------------------------------------------
# DC's models


class MLP(nn.Module):
    def __init__(self, channel, num_classes, im_size=32):
        super().__init__()
        self.fc_1 = nn.Linear(channel * im_size * im_size, 128)
        self.fc_2 = nn.Linear(128, 128)
        self.fc_3 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc_3(F.relu(self.fc_2(F.relu(self.fc_1(x)))))


class LeNet(nn.Module):
    def __init__(self, channel, num_classes, im_size=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channel, 6, 5, padding=2 if channel == 1 else 0), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.fc_1 = nn.Linear(_feat_size(self.features, channel, im_size), 120)
        self.fc_2 = nn.Linear(120, 84)
        self.fc_3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.features(x).flatten(1)
        return self.fc_3(F.relu(self.fc_2(F.relu(self.fc_1(x)))))


class AlexNet(nn.Module):
    def __init__(self, channel, num_classes, im_size=32, bn=False):
        super().__init__()
        spec = [(128, 5, 4 if channel == 1 else 2, True), (192, 5, 2, True), (256, 3, 1, False),
                (192, 3, 1, False), (192, 3, 1, True)]
        layers, c = [], channel
        for out, k, pad, pool in spec:
            layers.append(nn.Conv2d(c, out, k, stride=1, padding=pad))
            if bn:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(2, 2))
            c = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(_feat_size(self.features, channel, im_size), num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class VGG11(nn.Module):
    cfg = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]

    def __init__(self, channel, num_classes, im_size=32, bn=False):
        super().__init__()
        layers, c = [], channel
        for ic, x in enumerate(self.cfg):
            if x == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers += [nn.Conv2d(c, x, 3, padding=3 if channel == 1 and ic == 0 else 1),
                       nn.BatchNorm2d(x) if bn else nn.GroupNorm(x, x, affine=True), nn.ReLU(inplace=True)]
            c = x
        layers.append(nn.AvgPool2d(1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(_feat_size(self.features, channel, im_size), num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _norm(c, bn):
    return nn.BatchNorm2d(c) if bn else nn.GroupNorm(c, c, affine=True)


class DCBasicBlock(nn.Module):
    def __init__(self, inp, planes, stride, bn, ap):
        super().__init__()
        self.stride, self.ap = stride, ap
        self.conv1 = nn.Conv2d(inp, planes, 3, stride=1 if ap else stride, padding=1, bias=False)
        self.bn1 = _norm(planes, bn)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(planes, bn)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != planes:
            if ap:
                self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride=1, bias=False),
                                              nn.AvgPool2d(2, 2), _norm(planes, bn))
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride=stride, bias=False),
                                              _norm(planes, bn))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        if self.ap and self.stride != 1:
            out = F.avg_pool2d(out, 2, 2)
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)


class DCResNet18(nn.Module):
    def __init__(self, channel, num_classes, im_size=32, bn=False, ap=False):
        super().__init__()
        self.ap = ap
        self.conv1 = nn.Conv2d(channel, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = _norm(64, bn)
        inp = 64
        for i, planes in enumerate([64, 128, 256, 512]):
            blocks = []
            for b in range(2):
                blocks.append(DCBasicBlock(inp, planes, 2 if b == 0 and i > 0 else 1, bn, ap))
                inp = planes
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        self.classifier = nn.Identity()
        self.eval()  # sizing pass: leave the BatchNorm statistics alone
        with torch.no_grad():
            n = self._features(torch.zeros(1, channel, im_size, im_size)).shape[1]
        self.train()
        self.classifier = nn.Linear(n, num_classes)

    def _features(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 1, 1) if self.ap else F.avg_pool2d(out, 4)
        return out.flatten(1)

    def forward(self, x):
        return self.classifier(self._features(x))


# ----------------------------------------------------------------------------
# torchvision, SRe2L's modification


def resnet_modified(depth, channel, num_classes):
    m = torchvision.models.__dict__["resnet%d" % depth](num_classes=num_classes)
    m.conv1 = nn.Conv2d(channel, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
    m.maxpool = nn.Identity()
    return m


# ----------------------------------------------------------------------------
# G-VBSM's CIFAR teachers


def _conv_bn(inp, oup, k, stride, groups=1, relu=True):
    layers = [nn.Conv2d(inp, oup, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(oup)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        self.use_res = stride == 1 and inp == oup
        h = inp * t
        self.conv = nn.Sequential(*_conv_bn(inp, h, 1, 1), *_conv_bn(h, h, 3, stride, groups=h),
                                  *_conv_bn(h, oup, 1, 1, relu=False))

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    setting = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1)]

    def __init__(self, channel, num_classes, im_size=32, width=0.5):
        super().__init__()
        assert im_size % 32 == 0
        inp = int(32 * width)
        self.conv1 = nn.Sequential(*_conv_bn(channel, inp, 3, 2))
        self.blocks = nn.ModuleList()
        for t, c, n, s in self.setting:
            out, layers = int(c * width), []
            for i in range(n):
                layers.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
            self.blocks.append(nn.Sequential(*layers))
        self.conv2 = nn.Sequential(*_conv_bn(inp, 1280, 1, 1))
        self.classifier = nn.Sequential(nn.Linear(1280, num_classes))
        self.avgpool = nn.AvgPool2d(im_size // 16, ceil_mode=True)
        for m in self.modules():  # the definition's initialisation
            if isinstance(m, nn.Conv2d):
                m.weight.data.normal_(0, (2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.data.normal_(0, 0.01)
                m.bias.data.zero_()

    def forward(self, x):
        out = self.conv1(x)
        for b in self.blocks:
            out = b(out)
        out = self.avgpool(self.conv2(out)).flatten(1)
        return self.classifier(out)


class WRNBlock(nn.Module):
    def __init__(self, inp, out, stride):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(inp), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(out), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.equal = inp == out
        self.convShortcut = None if self.equal else nn.Conv2d(inp, out, 1, stride, 0, bias=False)

    def forward(self, x):
        if self.equal:
            out = self.relu1(self.bn1(x))
        else:
            x = self.relu1(self.bn1(x))
            out = x
        out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
        return torch.add(x if self.equal else self.convShortcut(x), out)


class WRNStage(nn.Module):
    def __init__(self, n, inp, out, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WRNBlock(inp if i == 0 else out, out, stride if i == 0 else 1)
                                     for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WRN(nn.Module):
    def __init__(self, channel, num_classes, depth=16, widen=2):
        super().__init__()
        ch = [16, 16 * widen, 32 * widen, 64 * widen]
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(channel, ch[0], 3, 1, 1, bias=False)
        self.block1 = WRNStage(n, ch[0], ch[1], 1)
        self.block2 = WRNStage(n, ch[1], ch[2], 2)
        self.block3 = WRNStage(n, ch[2], ch[3], 2)
        self.bn1, self.relu = nn.BatchNorm2d(ch[3]), nn.ReLU(inplace=True)
        self.fc = nn.Linear(ch[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data.normal_(0, (2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5)
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, out.size(3)).flatten(1)
        return self.fc(out)


def _shuffle(x, g=2):
    n, c, h, w = x.size()
    return x.view(n, g, c // g, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class ShuffleBasic(nn.Module):
    def __init__(self, c):
        super().__init__()
        c = c // 2
        self.conv1, self.bn1 = nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False), nn.BatchNorm2d(c)
        self.conv3, self.bn3 = nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        c = x.size(1) // 2
        x1, x2 = x[:, :c], x[:, c:]
        out = F.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return _shuffle(torch.cat([x1, out], 1))


class ShuffleDown(nn.Module):
    def __init__(self, inp, out):
        super().__init__()
        mid = out // 2
        self.conv1, self.bn1 = nn.Conv2d(inp, inp, 3, 2, 1, groups=inp, bias=False), nn.BatchNorm2d(inp)
        self.conv2, self.bn2 = nn.Conv2d(inp, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = nn.Conv2d(inp, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv4, self.bn4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False), nn.BatchNorm2d(mid)
        self.conv5, self.bn5 = nn.Conv2d(mid, mid, 1, bias=False), nn.BatchNorm2d(mid)

    def forward(self, x):
        out1 = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        out2 = F.relu(self.bn3(self.conv3(x)))
        out2 = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(out2)))))
        return _shuffle(torch.cat([out1, out2], 1))


class ShuffleNetV2(nn.Module):
    def __init__(self, channel, num_classes, out=(48, 96, 192, 1024), blocks=(3, 7, 3)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(channel, 24, 1, bias=False), nn.BatchNorm2d(24)
        inp = 24
        for i in range(3):
            setattr(self, "layer%d" % (i + 1),
                    nn.Sequential(ShuffleDown(inp, out[i]), *[ShuffleBasic(out[i]) for _ in range(blocks[i])]))
            inp = out[i]
        self.conv2 = nn.Conv2d(out[2], out[3], 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(out[3])
        self.linear = nn.Linear(out[3], num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.avg_pool2d(out, out.size(3)).flatten(1)
        return self.linear(out)


def build(name, channel, num_classes, im_size=32):
    n = name.lower()
    if n == "mlp":
        return MLP(channel, num_classes, im_size)
    if n == "lenet":
        return LeNet(channel, num_classes, im_size)
    if n in ("alexnet", "alexnetbn"):
        return AlexNet(channel, num_classes, im_size, bn=n.endswith("bn"))
    if n in ("vgg11", "vgg11bn"):
        return VGG11(channel, num_classes, im_size, bn=n.endswith("bn"))
    if n in ("resnet18", "resnet18bn", "resnet18_ap", "resnet18bn_ap"):
        return DCResNet18(channel, num_classes, im_size, bn="bn" in n, ap=n.endswith("_ap"))
    if n in ("resnet18_modified", "resnet50_modified"):
        return resnet_modified(int(n[6:8]), channel, num_classes)
    if n == "mobilenetv2":
        return MobileNetV2(channel, num_classes, im_size)
    if n == "wrn_16_2":
        return WRN(channel, num_classes)
    if n == "shufflenetv2_0_5":
        return ShuffleNetV2(channel, num_classes)
    if n.startswith("convnet"):
        from torch_models import ConvNet
        return ConvNet(channel, num_classes, im_size=(im_size, im_size))
    raise ValueError("unknown architecture " + name)
