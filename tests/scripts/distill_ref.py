"""PyTorch ports of the official distillation loops, for tests/test_distill.c's step
fidelity, written from the official code (read as the specification, not copied):

  DM     VICO-UoE/DatasetCondensation main_DM.py (the ConvNet and the ConvNetBN branch)
  IDM    uitrbn/IDM IDM_cifar10.py (queue of models, number_sign_augment, syn_ce, per-class
         image steps, model training), with command.txt's switches
  BACON  zhouzhengqd/BACON Code/BACON_cifar10.py: IDM's loop with utils.py's
         negative_log_likelihood, total_variation and clip_function

Every random draw the official code makes (np.random.permutation in get_images,
random.shuffle of the model queue, the DiffAugment seed, get_network's initial weights)
is made here by a Draws object, which records it; the fixture holds the records, and the
C test feeds them to beard through its DistillOverride hooks, in the same order. Initial
weights are not stored: they come from a 64-bit LCG that both sides compute exactly
(lcg_init below, net_init in test_distill.c), U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
convolution and linear layers like PyTorch's default, (1, 0) for norms.

The fixtures use inputs whose ReLU pre-activations (those that need a gradient) all lie
farther than KINK from 0, drawing again from the next seed otherwise: where beard's and
PyTorch's rounding put such a value on different sides, that unit's backward mask, and
with it a visible part of the gradient, differs (the kink rule of gradient checks).

Run by hand with a python that has torch:
    /usr/bin/python3 tests/scripts/distill_ref.py
It writes tests/fixtures/distill/{dm,dm_bn,idm,bacon}.bin (BEARDFIX): the real "dataset"
(uint8 values), the draws, and per iteration the loss as the official code prints it,
the gradient w.r.t. the synthetic images before every image step (IDM/BACON: the
stepped class's block; it is zero elsewhere), and the images after the iteration.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402
from gen_dsa_fixtures import OPS, draws as dsa_draws  # noqa: E402
from torch_models import ConvNet  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "distill")
MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2023, 0.1994, 0.2010]
OP_IDS = {"color": 0, "crop": 1, "cutout": 2, "flip": 3, "scale": 4, "rotate": 5}  # beard's DsaOp
DRAW_REAL_CLASS, DRAW_REAL_ANY, DRAW_PICK = 0, 1, 2
P_KEYS = ["brightness", "saturation", "contrast", "crop_x", "crop_y", "cutout_x", "cutout_y", "flip",
          "scale_x", "scale_y", "angle"]


def lcg_init(net, tag):
    """Fixed initial weights, the same in C: a 64-bit LCG per network."""
    state = (0x9E3779B97F4A7C15 * (tag + 1)) & 0xFFFFFFFFFFFFFFFF
    sd = net.state_dict()
    with torch.no_grad():
        for name, t in sd.items():
            if t.dtype != torch.float32:
                continue
            parts = name.split(".")
            module = net.get_submodule(".".join(parts[:-1]))
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                w = module.weight
                fan_in = w[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                vals = np.empty(t.numel(), dtype=np.float64)
                for i in range(t.numel()):
                    state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
                    u = (state >> 40) / float(1 << 24)
                    vals[i] = bound * (2.0 * u - 1.0)
                t.copy_(torch.from_numpy(vals.astype(np.float32)).view_as(t))
            elif parts[-1] == "weight":
                t.fill_(1.0)
            elif parts[-1] == "bias":
                t.fill_(0.0)
            # running_mean / running_var keep their defaults (0, 1)
    net.load_state_dict(sd)


class Draws:
    """The official code's random draws, made here and recorded for the fixture."""

    def __init__(self, seed, H, W):
        self.rng = np.random.RandomState(seed)
        self.g = torch.Generator().manual_seed(seed)
        self.H, self.W = H, W
        self.choose_log, self.dsa_log, self.nets = [], [], 0
        self.ops = list(OP_IDS.keys())

    def choose(self, kind, tag, n, k):
        k = min(k, n)
        v = self.rng.permutation(n)[:k]
        self.choose_log.append([kind, tag, n, k] + list(v))
        return [int(i) for i in v]

    def dsa(self):
        op = self.ops[int(self.rng.randint(len(self.ops)))]
        p = dsa_draws(1, self.H, self.W, self.g)
        self.dsa_log.append([OP_IDS[op]] + [float(p[k][0]) for k in P_KEYS])
        return op, p

    def net(self, net):
        lcg_init(net, self.nets)
        self.nets += 1


def augment(x, d):
    """DiffAugment with a seed in aug_mode 'S': one op, sample 0's parameters for all."""
    op, p = d
    B = x.shape[0]
    q = {k: v[:1].repeat(B) for k, v in p.items()}
    return OPS[op](x, q).contiguous()  # DiffAugment ends with x.contiguous()


def embed(net, x):  # DC's ConvNet.embed; IDM's embed_channel_avg(x, last=1000) is the same
    out = net.features(x)
    return out.view(out.size(0), -1)


def make_net(K, H, norm, draws, width):
    net = ConvNet(3, K, net_width=width, net_norm=norm, im_size=(H, H))
    draws.net(net)
    return net


def real_float(u8):
    x = torch.from_numpy(u8.astype(np.float32)).div(255.0)
    for c in range(3):
        x[:, c] = (x[:, c] - MEAN[c]) / STD[c]
    return x


class Real:
    """images_all / indices_class as the official loops build them (class-major here)."""

    def __init__(self, u8, labels, K, draws):
        self.x = real_float(u8)
        self.y = torch.tensor(labels, dtype=torch.long)
        self.idx = [[i for i, l in enumerate(labels) if l == c] for c in range(K)]
        self.draws = draws

    def get_images(self, c, n):
        pick = self.draws.choose(DRAW_REAL_CLASS, c, len(self.idx[c]), n)
        return self.x[[self.idx[c][i] for i in pick]]

    def get_any(self, n):
        flat = [i for sub in self.idx for i in sub]
        pick = self.draws.choose(DRAW_REAL_ANY, 0, len(flat), n)
        sel = [flat[i] for i in pick]
        return self.x[sel], self.y[sel]


def number_sign_augment(image_syn, label_syn):
    h = image_syn.shape[2] // 2
    a, b = image_syn[:, :, :h, :h].clone(), image_syn[:, :, h:, :h].clone()
    c, d = image_syn[:, :, :h, h:].clone(), image_syn[:, :, h:, h:].clone()
    up = [F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False) for t in (a, b, c, d)]
    return torch.cat(up, dim=0), label_syn.repeat(4)


def downscale(x):
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------------------
# DM (main_DM.py)

def dm_run(real, K, ipc, H, iters, bn, width, lr_img=1.0):
    draws = real.draws
    image_syn = torch.randn(K * ipc, 3, H, H)
    for c in range(K):  # init 'real'
        image_syn.data[c * ipc:(c + 1) * ipc] = real.get_images(c, ipc).detach().data
    image_syn.requires_grad_(True)
    opt = torch.optim.SGD([image_syn], lr=lr_img, momentum=0.5)
    out = {"init": image_syn.detach().clone()}
    for it in range(iters):
        net = make_net(K, H, "batchnorm" if bn else "instancenorm", draws, width)
        net.train()
        for p in net.parameters():
            p.requires_grad = False
        loss = torch.tensor(0.0)
        if not bn:
            for c in range(K):
                img_real = real.get_images(c, real.batch_real)
                img_syn = image_syn[c * ipc:(c + 1) * ipc]
                d = draws.dsa()
                img_real, img_syn = augment(img_real, d), augment(img_syn, d)
                output_real = embed(net, img_real).detach()
                output_syn = embed(net, img_syn)
                loss += torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0)) ** 2)
        else:
            reals, syns = [], []
            for c in range(K):
                img_real = real.get_images(c, real.batch_real)
                img_syn = image_syn[c * ipc:(c + 1) * ipc]
                d = draws.dsa()
                reals.append(augment(img_real, d))
                syns.append(augment(img_syn, d))
            output_real = embed(net, torch.cat(reals)).detach()
            output_syn = embed(net, torch.cat(syns))
            loss += torch.sum((torch.mean(output_real.reshape(K, real.batch_real, -1), dim=1) -
                               torch.mean(output_syn.reshape(K, ipc, -1), dim=1)) ** 2)
        opt.zero_grad()
        loss.backward()
        out["it%d.grad0" % it] = image_syn.grad.detach().clone()
        opt.step()
        out["it%d.loss" % it] = torch.tensor([loss.item() / K])
        out["it%d.syn" % it] = image_syn.detach().clone()
    return out


# --------------------------------------------------------------------------------------
# IDM (IDM_cifar10.py) and BACON (BACON_cifar10.py)

def idm_match_loss(output_real, output_syn):
    return torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0)) ** 2)


def total_variation(p, q):
    return 0.5 * torch.sum(torch.abs(torch.mean(p, dim=0) - torch.mean(q, dim=0)))


def clip_function(x, y):
    x_unorm = (torch.mean(x, dim=0) - torch.mean(y, dim=0)) / torch.std(y, dim=0)
    return torch.sum(torch.mean(torch.square(x_unorm - torch.clamp(x_unorm, 0.0, 1.0)), dim=0))


def gaussian_pdf(x, y):
    sigma = torch.exp(torch.std(y, dim=0))
    return 1 / (torch.sqrt(2 * torch.tensor(math.pi)) * sigma) * \
        torch.exp(-0.5 * ((torch.mean(x, dim=0) - torch.mean(y, dim=0)) / sigma) ** 2)


def negative_log_likelihood(x, y):
    return -torch.sum(torch.log(gaussian_pdf(x, y)))


def bacon_match_loss(output_real, output_syn):
    prob_real = F.softmax(output_real.mean(dim=0), dim=-1)
    prob_syn = F.softmax(output_syn.mean(dim=0), dim=-1)
    tv = total_variation(output_syn, output_real)
    clip_r = clip_function(prob_syn, prob_real)
    loss = negative_log_likelihood(output_syn, output_real)
    return loss + 0.8 * tv + 0.2 * clip_r


class Meter:  # torchnet.meter.ClassErrorMeter(accuracy=True), top-1
    def __init__(self):
        self.correct = self.n = 0

    def add(self, logits, labels):
        self.correct += int((logits.argmax(dim=1) == labels).sum())
        self.n += labels.numel()

    def value(self):
        return 100.0 * self.correct / self.n


def idm_run(real, K, ipc, H, iters, match_loss, a, width):
    """a: the official args (the fields the loop reads)."""
    draws = real.draws
    image_syn = torch.randn(K * ipc, 3, H, H)
    label_syn = torch.tensor([[c] * ipc for c in range(K)], dtype=torch.long).view(-1)
    h = H // 2
    for c in range(K):  # init 'real' with aug: four downscaled images per synthetic one
        image_syn.data[c * ipc:(c + 1) * ipc, :, :h, :h] = downscale(real.get_images(c, ipc)).detach().data
        image_syn.data[c * ipc:(c + 1) * ipc, :, h:, :h] = downscale(real.get_images(c, ipc)).detach().data
        image_syn.data[c * ipc:(c + 1) * ipc, :, :h, h:] = downscale(real.get_images(c, ipc)).detach().data
        image_syn.data[c * ipc:(c + 1) * ipc, :, h:, h:] = downscale(real.get_images(c, ipc)).detach().data
    image_syn.requires_grad_(True)
    optimizer_img = torch.optim.SGD([image_syn], lr=a["lr_img"], momentum=0.5)
    out = {"init": image_syn.detach().clone()}
    net_list, optimizer_list, acc_meters = [], [], []

    def push():
        net = make_net(K, H, "instancenorm", draws, width)
        net.train()
        net_list.append(net)
        optimizer_list.append(torch.optim.SGD(net.parameters(), lr=a["lr_net"], momentum=0.9, weight_decay=0.0005))
        acc_meters.append(Meter())

    for _ in range(3):
        push()
    criterion = nn.CrossEntropyLoss()
    for it in range(iters):
        if it > 0 and it % a["eval_interval"] == 0:
            for m in acc_meters:
                m.correct = m.n = 0
        if it % a["net_generate_interval"] == 0:
            if len(net_list) == a["net_num"]:
                net_list.pop(0), optimizer_list.pop(0), acc_meters.pop(0)
            push()
        order = list(range(len(net_list)))
        picked = draws.choose(DRAW_PICK, 0, len(order), a["train_net_num"])
        train_net_list = [net_list[order[i]] for i in picked]
        train_acc_list = [acc_meters[order[i]] for i in picked]
        loss_total = 0.0
        steps = 0
        for net, net_acc in zip(train_net_list, train_acc_list):
            net.eval()
            for c in range(K):
                loss_c = torch.tensor(0.0)
                img_real = real.get_images(c, a["batch_real"])
                img_syn = image_syn[c * ipc:(c + 1) * ipc]
                lab_syn = label_syn[c * ipc:(c + 1) * ipc]
                img_syn, lab_syn = number_sign_augment(img_syn, lab_syn)
                d = draws.dsa()
                img_real, img_syn = augment(img_real, d), augment(img_syn, d)
                output_real = embed(net, img_real).detach()
                output_syn = embed(net, img_syn)
                loss_c += match_loss(output_real, output_syn)
                logits_syn = net(img_syn)
                weight_i = net_acc.value() if net_acc.n != 0 else 0
                out["it%d.ce_weight%d" % (it, steps)] = torch.tensor([weight_i * a["ce_weight"]])
                loss_c += F.cross_entropy(logits_syn, lab_syn) * weight_i * a["ce_weight"]
                optimizer_img.zero_grad()
                loss_c.backward()
                # only class c's images have a gradient (the C test checks the rest is 0)
                out["it%d.grad%d" % (it, steps)] = image_syn.grad[c * ipc:(c + 1) * ipc].detach().clone()
                steps += 1
                optimizer_img.step()
                loss_total += loss_c.item()
        out["it%d.loss" % it] = torch.tensor([loss_total / K])
        shuffled = draws.choose(DRAW_PICK, 1, len(net_list), a["fetch_net_num"])
        tl = []
        for j in shuffled:
            net_train = net_list[j]
            net_train.train()
            for _ in range(a["model_train_steps"]):
                img_real_, lab_real_ = real.get_any(a["trained_bs"])
                real_logit = net_train(img_real_)
                syn_cls_loss = criterion(real_logit, lab_real_)
                optimizer_list[j].zero_grad()
                syn_cls_loss.backward()
                optimizer_list[j].step()
                acc_meters[j].add(real_logit.detach(), lab_real_)
                tl.append(syn_cls_loss.item())
        out["it%d.syn" % it] = image_syn.detach().clone()
        out["it%d.meters" % it] = torch.tensor([[m.correct, m.n] for m in acc_meters], dtype=torch.float32)
        out["it%d.train_losses" % it] = torch.tensor(tl)
    return out


def dataset(K, per, H, seed):
    rng = np.random.RandomState(seed)
    u8 = rng.randint(0, 256, size=(K * per, 3, H, H)).astype(np.uint8)
    # smooth it a little so that the features are not pure noise
    u8 = ((u8.astype(np.int32) + np.roll(u8, 1, axis=3) + np.roll(u8, 1, axis=2)) // 3).astype(np.uint8)
    labels = [i // per for i in range(K * per)]
    return u8, labels


def write(name, u8, labels, draws, out, meta):
    T = {"real.u8": u8.astype(np.float32), "real.labels": np.array(labels, dtype=np.float32)}
    T["meta"] = np.array(meta, dtype=np.float32)
    w = max(len(r) for r in draws.choose_log)
    ch = np.full((len(draws.choose_log), w), -1, dtype=np.float32)
    for i, r in enumerate(draws.choose_log):
        ch[i, :len(r)] = r
    T["draws.choose"] = ch
    T["draws.dsa"] = np.array(draws.dsa_log, dtype=np.float32)
    T["draws.nets"] = np.array([draws.nets], dtype=np.float32)
    T.update({k: v for k, v in out.items()})
    path = os.path.join(OUT, name + ".bin")
    write_fixture(path, T)
    print("wrote", path, os.path.getsize(path), "bytes")


# ReLU inputs that need a gradient and sit within KINK of 0: two implementations' rounding
# can put them on different sides, which changes the backward mask of that unit (the
# same reason gradient checks skip the kinks). The fixtures are drawn again from the next
# seed until no such input occurs.
KINK = 2e-6
_relu_forward = nn.ReLU.forward
_kink = [float("inf")]


def _guarded_relu(self, x):
    if x.requires_grad:
        _kink[0] = min(_kink[0], float(x.detach().abs().min()))
    return _relu_forward(self, x)


nn.ReLU.forward = _guarded_relu


def away_from_kinks(make, seed):
    """make(seed) -> (result, ok); the first seed from `seed` on whose run has no kink"""
    for s in range(seed, seed + 1000):
        _kink[0] = float("inf")
        res, ok = make(s)
        if ok and _kink[0] > KINK:
            return res, s
    raise RuntimeError("no seed without kinks")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    K, H = 3, 16
    # DM: two iterations (momentum), ConvNetW32 and ConvNetBN (width 128)
    for name, bn, width, seed in (("dm", False, 32, 100), ("dm_bn", True, 128, 200)):
        def make(s):
            u8, labels = dataset(K, 7, H, s)
            draws = Draws(s, H, H)
            real = Real(u8, labels, K, draws)
            real.batch_real = 5
            return (u8, labels, draws, dm_run(real, K, 2, H, 2, bn, width)), True

        (u8, labels, draws, out), s = away_from_kinks(make, seed)
        write(name, u8, labels, draws, out, [K, H, 2, 2, 5, 1.0, width, s])
    # IDM and BACON: two iterations; the second matches with a trained model, so the CE
    # term (weighted by its running accuracy) is live
    a = {"lr_img": 0.2, "lr_net": 0.01, "eval_interval": 100, "net_generate_interval": 2, "net_num": 100,
         "train_net_num": 1, "fetch_net_num": 2, "model_train_steps": 1, "trained_bs": 8, "batch_real": 6,
         "ce_weight": 0.5}
    for name, loss, seed in (("idm", idm_match_loss, 300), ("bacon", bacon_match_loss, 400)):
        def make(s):
            u8, labels = dataset(K, 8, H, s)
            draws = Draws(s, H, H)
            real = Real(u8, labels, K, draws)
            out = idm_run(real, K, 1, H, 2, loss, a, 32)
            return (u8, labels, draws, out), float(out["it1.ce_weight0"]) > 0

        (u8, labels, draws, out), s = away_from_kinks(make, seed)
        write(name, u8, labels, draws, out, [K, H, 1, 2, a["batch_real"], a["lr_img"], a["lr_net"],
                                             a["net_generate_interval"], a["fetch_net_num"], a["model_train_steps"],
                                             a["trained_bs"], a["ce_weight"], a["train_net_num"], 32, s])


if __name__ == "__main__":
    main()
