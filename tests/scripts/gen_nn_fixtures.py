"""Reference tensors for tests/test_nn.c, from PyTorch (run by hand with a python that has torch:
    /usr/bin/python3 tests/scripts/gen_nn_fixtures.py
It writes tests/fixtures/nn_layers.bin and tests/fixtures/nn_models.bin (BEARDFIX format, see
tests/scripts/fixture.py). Each layer case stores its inputs and parameters, the forward output
and, for a random upstream gradient `dout`, the gradients PyTorch's autograd computes."""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402
from torch_models import ConvNet  # noqa: E402

torch.manual_seed(1234)
torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
T = {}


def case(prefix, module, x, extra=None):
    x = x.clone().requires_grad_(True)
    out = module(x)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x] + list(module.parameters()), dout)
    T[prefix + ".x"] = x
    T[prefix + ".out"] = out
    T[prefix + ".dout"] = dout
    T[prefix + ".dx"] = grads[0]
    for (name, p), g in zip(module.named_parameters(), grads[1:]):
        T[prefix + "." + name] = p
        T[prefix + ".d" + name] = g
    for name, b in module.named_buffers():
        if b.dtype.is_floating_point:
            T[prefix + "." + name] = b
    if extra:
        T.update({prefix + "." + k: v for k, v in extra.items()})


# conv2d: kernel size, stride, padding
for k, s, p in [(3, 1, 1), (3, 2, 1), (3, 1, 0), (1, 1, 0), (5, 2, 2), (3, 1, 3), (2, 2, 0)]:
    m = nn.Conv2d(3, 4, k, stride=s, padding=p)
    case(f"conv_k{k}s{s}p{p}", m, torch.randn(2, 3, 7, 7))

case("linear", nn.Linear(5, 4), torch.randn(3, 5))

# activations (inputs kept away from relu's kink)
x = torch.randn(2, 3, 4, 4)
x = torch.where(x.abs() < 1e-3, torch.full_like(x, 0.1), x)
case("relu", nn.ReLU(), x)
case("leaky_relu", nn.LeakyReLU(0.01), x)
case("sigmoid", nn.Sigmoid(), x)
case("silu", nn.SiLU(), x)
case("gelu", nn.GELU(), x)


gn = nn.GroupNorm(3, 6)
with torch.no_grad():
    gn.weight.copy_(torch.randn(6) * 0.5 + 1)
    gn.bias.copy_(torch.randn(6) * 0.5)
case("groupnorm", gn, torch.randn(2, 6, 4, 4) * 2 + 0.5)

inorm = nn.GroupNorm(6, 6)
with torch.no_grad():
    inorm.weight.copy_(torch.randn(6) * 0.5 + 1)
    inorm.bias.copy_(torch.randn(6) * 0.5)
case("instancenorm", inorm, torch.randn(2, 6, 4, 4) * 2 + 0.5)

ln = nn.LayerNorm([3, 4, 4])
with torch.no_grad():
    ln.weight.copy_(torch.randn(3, 4, 4) * 0.5 + 1)
    ln.bias.copy_(torch.randn(3, 4, 4) * 0.5)
case("layernorm", ln, torch.randn(2, 3, 4, 4) * 2 + 0.5)

# batchnorm: training mode (batch statistics, running stats updated) and eval mode
bn = nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.copy_(torch.randn(3) * 0.5 + 1)
    bn.bias.copy_(torch.randn(3) * 0.5)
    bn.running_mean.copy_(torch.randn(3) * 0.1)
    bn.running_var.copy_(torch.rand(3) + 0.5)
rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
bn.train()
case("batchnorm_train", bn, torch.randn(4, 3, 5, 5) * 2 + 0.5, {"running_mean0": rm0, "running_var0": rv0})
bn.eval()
case("batchnorm_eval", bn, torch.randn(4, 3, 5, 5) * 2 + 0.5)

for k, s in [(2, 2), (3, 2), (3, 1)]:
    case(f"avgpool_k{k}s{s}", nn.AvgPool2d(k, s), torch.randn(2, 3, 7, 7))
    case(f"maxpool_k{k}s{s}", nn.MaxPool2d(k, s), torch.randn(2, 3, 7, 7))

# cross-entropy, mean reduction: hard labels and soft targets
z = torch.randn(4, 5, requires_grad=True)
y = torch.tensor([0, 3, 4, 1])
loss = F.cross_entropy(z, y)
T["ce_hard.logits"], T["ce_hard.labels"], T["ce_hard.loss"] = z, y.float(), loss.reshape(1)
T["ce_hard.dlogits"] = torch.autograd.grad(loss, z)[0]
t = torch.softmax(torch.randn(4, 5), 1)
loss = F.cross_entropy(z, t)
T["ce_soft.logits"], T["ce_soft.targets"], T["ce_soft.loss"] = z, t, loss.reshape(1)
T["ce_soft.dlogits"] = torch.autograd.grad(loss, z)[0]

write_fixture(os.path.join(OUT, "nn_layers.bin"), T)
print("nn_layers.bin:", len(T), "tensors")

# whole models: small-width ConvNet variants, logits and the input gradient of CE(sum)
M = {}
variants = [
    ("default", dict(), 3, 32),
    ("bn", dict(net_norm="batchnorm"), 3, 32),
    ("ln", dict(net_norm="layernorm"), 3, 32),
    ("gn", dict(net_norm="groupnorm"), 3, 32),
    ("nn", dict(net_norm="none"), 3, 32),
    ("mp", dict(net_pooling="maxpooling"), 3, 32),
    ("np", dict(net_pooling="none", net_depth=2), 3, 16),
    ("as", dict(net_act="sigmoid"), 3, 32),
    ("al", dict(net_act="leakyrelu"), 3, 32),
    ("swish", dict(net_act="swish"), 3, 32),
    ("d1", dict(net_depth=1), 3, 32),
    ("mnist", dict(), 1, 28),
]
for name, kw, ch, im in variants:
    net = ConvNet(ch, 10, net_width=8, im_size=(im, im), **{k: v for k, v in kw.items()})
    with torch.no_grad():
        for pn, p in net.named_parameters():
            if p.dim() == 1 and ("features" in pn):
                p.add_(torch.randn_like(p) * 0.2)
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn_like(mod.running_mean) * 0.1)
                mod.running_var.copy_(torch.rand_like(mod.running_var) + 0.5)
    net.eval()
    x = torch.randn(2, ch, im, im).requires_grad_(True)
    y = torch.tensor([1, 9])
    logits = net(x)
    loss = F.cross_entropy(logits, y, reduction="sum")
    dx = torch.autograd.grad(loss, x)[0]
    M[f"{name}.x"], M[f"{name}.logits"], M[f"{name}.dx"] = x, logits, dx
    for k, v in net.state_dict().items():
        if v.dtype.is_floating_point:
            M[f"{name}.sd.{k}"] = v
write_fixture(os.path.join(OUT, "nn_models.bin"), M)
print("nn_models.bin:", len(M), "tensors")
