"""Second-order reference tensors for tests/test_so.c, from PyTorch's double backward
(run by hand with a python that has torch):
    /usr/bin/python3 tests/scripts/gen_so_fixtures.py
It writes tests/fixtures/so_layers.bin and tests/fixtures/so_models.bin (BEARDFIX format,
see tests/scripts/fixture.py).

Every case draws its inputs in float32 and computes in float64, so that the stored
reference is exact to float32 rounding and the C test's tolerance measures beard alone.

Layers: each op sits in a composite loss L(x, theta) = h(op(x, theta)) with
h(y) = sum(R y) + sum(S y^2) / 2 (S > 0), so that the upstream gradient depends on the
output and every tangent path of the op is exercised. For a tangent t = (u, v) on
(x, theta) the reference is
    grad_(x, theta) [ u . grad_x L + v . grad_theta L ]
from torch.autograd.grad(..., create_graph=True). "mixed" cases have u = 0: their x part
is the quantity DC and MTT need, grad_x (v . grad_theta L). "full" cases have u != 0
(an op deep in a network sees a moving input).

Models: small-width ConvNet variants under the mean cross-entropy of a batch, the same
two products for a random v over all parameters (u = 0), in eval mode and, for
BatchNorm, in training mode too (batch statistics); and a small residual graph (a node
read twice, a sum of branches, a convolution without bias), in both BatchNorm modes."""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402
from torch_models import ConvNet  # noqa: E402

torch.manual_seed(4321)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
T = {}


def f32(*shape, scale=1.0, shift=0.0):
    """float32 draws held in float64"""
    return (torch.randn(*shape) * scale + shift).float().double()


def hvp(loss_fn, inputs, tangents):
    """grad over inputs of sum <grad loss, tangent>, by double backward"""
    loss = loss_fn(*inputs)
    g = torch.autograd.grad(loss, inputs, create_graph=True, allow_unused=True)
    s = sum((gi * ti).sum() for gi, ti in zip(g, tangents) if gi is not None and ti is not None)
    return torch.autograd.grad(s, inputs, allow_unused=True)


def case(prefix, fn, x, params, mixed):
    """fn(x, *params) -> op output; writes inputs, R, S, tangents and the references"""
    x = x.clone().requires_grad_(True)
    params = [p.clone().requires_grad_(True) for p in params]
    y = fn(x, *params)
    R = f32(*y.shape)
    S = torch.rand(y.shape).float().double() + 0.5
    u = torch.zeros_like(x) if mixed else f32(*x.shape)
    vs = [f32(*p.shape, scale=0.5) for p in params]

    def loss(xx, *pp):
        yy = fn(xx, *pp)
        return (R * yy).sum() + 0.5 * (S * yy * yy).sum()

    res = hvp(loss, [x] + params, [u] + vs)
    T[prefix + ".x"], T[prefix + ".R"], T[prefix + ".S"], T[prefix + ".u"] = x, R, S, u
    T[prefix + ".hx"] = res[0] if res[0] is not None else torch.zeros_like(x)
    for i, (p, v, h) in enumerate(zip(params, vs, res[1:])):
        T[f"{prefix}.p{i}"], T[f"{prefix}.v{i}"] = p, v
        T[f"{prefix}.h{i}"] = h if h is not None else torch.zeros_like(p)


# conv2d: kernel, stride, padding (weight, bias)
for k, s, p in [(3, 1, 1), (3, 2, 1), (1, 1, 0), (5, 2, 2), (3, 1, 3)]:
    for mixed in (1, 0):
        case(f"conv_k{k}s{s}p{p}_{'mixed' if mixed else 'full'}",
             lambda x, w, b, s=s, p=p: F.conv2d(x, w, b, stride=s, padding=p),
             f32(2, 3, 7, 7), [f32(4, 3, k, k, scale=0.3), f32(4, scale=0.3)], mixed)

for mixed in (1, 0):
    case(f"linear_{'mixed' if mixed else 'full'}", lambda x, w, b: F.linear(x, w, b), f32(3, 6),
         [f32(4, 6, scale=0.4), f32(4, scale=0.4)], mixed)

# activations (inputs kept away from the kinks); their tangent is on x alone
xa = f32(2, 3, 4, 4, scale=2)
xa = torch.where(xa.abs() < 1e-2, torch.full_like(xa, 0.3), xa)
case("relu", lambda x: F.relu(x), xa, [], 0)
case("leaky_relu", lambda x: F.leaky_relu(x, 0.01), xa, [], 0)
case("sigmoid", torch.sigmoid, xa, [], 0)
case("silu", lambda x: x * torch.sigmoid(x), xa, [], 0)
case("gelu", F.gelu, xa, [], 0)

# normalisations (weight, bias)
norm_cases = [
    ("groupnorm", lambda x, g, b: F.group_norm(x, 3, g, b, 1e-5), (2, 6, 4, 4), (6,)),
    ("instancenorm", lambda x, g, b: F.group_norm(x, 6, g, b, 1e-5), (2, 6, 4, 4), (6,)),
    ("layernorm", lambda x, g, b: F.layer_norm(x, (3, 4, 4), g, b, 1e-5), (2, 3, 4, 4), (3, 4, 4)),
    ("batchnorm_train", lambda x, g, b: F.batch_norm(x, None, None, g, b, True, 0.1, 1e-5), (4, 3, 5, 5), (3,)),
]
for name, fn, xs, ps in norm_cases:
    for mixed in (1, 0):
        case(f"{name}_{'mixed' if mixed else 'full'}", fn, f32(*xs, scale=2, shift=0.5),
             [f32(*ps, scale=0.5, shift=1), f32(*ps, scale=0.5)], mixed)
rm, rv = f32(3, scale=0.1), torch.rand(3).float().double() + 0.5
T["batchnorm_eval.running_mean"], T["batchnorm_eval.running_var"] = rm, rv
for mixed in (1, 0):
    case(f"batchnorm_eval_{'mixed' if mixed else 'full'}",
         lambda x, g, b: F.batch_norm(x, rm, rv, g, b, False, 0.1, 1e-5), f32(4, 3, 5, 5, scale=2, shift=0.5),
         [f32(3, scale=0.5, shift=1), f32(3, scale=0.5)], mixed)
for name in ("batchnorm_eval_mixed", "batchnorm_eval_full"):
    T[name + ".running_mean"], T[name + ".running_var"] = rm, rv
del T["batchnorm_eval.running_mean"], T["batchnorm_eval.running_var"]

for k, s in [(2, 2), (3, 2), (3, 1)]:
    case(f"avgpool_k{k}s{s}", lambda x, k=k, s=s: F.avg_pool2d(x, k, s), f32(2, 3, 7, 7), [], 0)
    case(f"maxpool_k{k}s{s}", lambda x, k=k, s=s: F.max_pool2d(x, k, s), f32(2, 3, 7, 7), [], 0)

# cross-entropy (mean): the HVP in the logits, hard labels and soft targets
z = f32(4, 5, scale=2).requires_grad_(True)
y = torch.tensor([0, 3, 4, 1])
tsoft = (torch.softmax(torch.randn(4, 5), 1) * 1.3).float().double()
for name, tgt in (("ce_hard", y), ("ce_soft", tsoft)):
    u = f32(4, 5)
    (h,) = hvp(lambda zz: F.cross_entropy(zz, tgt), [z], [u])
    T[name + ".logits"], T[name + ".u"], T[name + ".hz"] = z, u, h
    if tgt.dtype.is_floating_point:
        T[name + ".targets"] = tgt
    else:
        T[name + ".labels"] = tgt.double()

write_fixture(os.path.join(OUT, "so_layers.bin"), T)
print("so_layers.bin:", len(T), "tensors")

# ----------------------------------------------------------------------------
# whole ConvNets: grad_x (v . grad_theta L) and H v for the mean cross-entropy
M = {}
variants = [
    ("default", dict(), 3, 32, False),
    ("bn_eval", dict(net_norm="batchnorm"), 3, 16, False),
    ("bn_train", dict(net_norm="batchnorm"), 3, 16, True),
    ("ln", dict(net_norm="layernorm"), 3, 16, False),
    ("gn", dict(net_norm="groupnorm"), 3, 16, False),
    ("nn", dict(net_norm="none"), 3, 16, False),
    ("mp", dict(net_pooling="maxpooling"), 3, 16, False),
    ("np", dict(net_pooling="none", net_depth=2), 3, 8, False),
    ("as", dict(net_act="sigmoid"), 3, 16, False),
    ("al", dict(net_act="leakyrelu"), 3, 16, False),
    ("swish", dict(net_act="swish"), 3, 16, False),
    ("swish_bn", dict(net_act="swish", net_norm="batchnorm"), 3, 16, True),
    ("d1", dict(net_depth=1), 3, 16, False),
    ("mnist", dict(), 1, 28, False),
]
for name, kw, ch, im, train in variants:
    net = ConvNet(ch, 10, net_width=8, im_size=(im, im), **kw)
    with torch.no_grad():
        for pn, p in net.named_parameters():
            if p.dim() == 1 and "features" in pn:
                p.add_(torch.randn_like(p) * 0.2)
            p.copy_(p.float())
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn_like(mod.running_mean) * 0.1)
                mod.running_var.copy_(torch.rand_like(mod.running_var) + 0.5)
    net = net.double()
    net.train(train)
    sd0 = {k: v.clone() for k, v in net.state_dict().items()}  # before train-mode forwards
    params = list(net.parameters())
    B = 2
    x = f32(B, ch, im, im).requires_grad_(True)
    y = torch.tensor([1, 9])
    vs = [f32(*p.shape, scale=0.1) for p in params]
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    g = torch.autograd.grad(loss, params, create_graph=True)
    s = sum((gi * vi).sum() for gi, vi in zip(g, vs))
    res = torch.autograd.grad(s, [x] + params)
    M[f"{name}.x"], M[f"{name}.labels"] = x, y.double()
    M[f"{name}.logits"], M[f"{name}.loss"] = logits, loss.reshape(1)
    M[f"{name}.hx"] = res[0]
    for (pn, p), v, gi, h in zip(net.named_parameters(), vs, g, res[1:]):
        M[f"{name}.v.{pn}"], M[f"{name}.h.{pn}"] = v, h
        if name == "default":
            M[f"{name}.g.{pn}"] = gi
    for k, v in sd0.items():
        if v.dtype.is_floating_point:
            M[f"{name}.sd.{k}"] = v

# a residual graph (what the graph Net builds for ResNets): a node read by two others,
# a sum of two branches, BatchNorm in training mode inside the branch
class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.n2 = nn.BatchNorm2d(8)
        self.c3 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        b = self.c3(torch.nn.functional.silu(self.n2(self.c2(a))))
        out = torch.relu(a + b)
        return self.fc(F.avg_pool2d(out, 2).flatten(1))


for name, train in (("res_train", True), ("res_eval", False)):
    net = Residual()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.float())
        net.n2.running_mean.copy_(torch.randn(8) * 0.1)
        net.n2.running_var.copy_(torch.rand(8) + 0.5)
    net = net.double()
    net.train(train)
    sd0 = {k: v.clone() for k, v in net.state_dict().items()}
    params = list(net.parameters())
    x = f32(2, 3, 8, 8).requires_grad_(True)
    y = torch.tensor([3, 5])
    vs = [f32(*p.shape, scale=0.1) for p in params]
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    g = torch.autograd.grad(loss, params, create_graph=True)
    s = sum((gi * vi).sum() for gi, vi in zip(g, vs))
    res = torch.autograd.grad(s, [x] + params)
    M[f"{name}.x"], M[f"{name}.labels"], M[f"{name}.logits"], M[f"{name}.loss"] = x, y.double(), logits, loss.reshape(1)
    M[f"{name}.hx"] = res[0]
    for (pn, p), v, h in zip(net.named_parameters(), vs, res[1:]):
        M[f"{name}.v.{pn}"], M[f"{name}.h.{pn}"] = v, h
    for k, v in sd0.items():
        if v.dtype.is_floating_point:
            M[f"{name}.sd.{k}"] = v

write_fixture(os.path.join(OUT, "so_models.bin"), M)
print("so_models.bin:", len(M), "tensors")
