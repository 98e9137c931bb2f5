"""Reference steps of the decoupled distillation methods for tests/test_decoupled.c, from PyTorch
(run by hand with Debian's python3-torch and python3-torchvision):
    /usr/bin/python3 tests/scripts/gen_decoupled_fixtures.py
It writes tests/fixtures/decoupled/*.bin (BEARDFIX format, see tests/scripts/fixture.py).

These are our own ports of the official loops, written from the code as the specification:
  - SRe2L, VILA-Lab/SRe2L `SRe2L/*small_dataset/recover_cifar.py` (+ utils.BNFeatureHook,
    lr_cosine_policy): inputs ~ randn, Adam(betas 0.5, 0.9), cosine lr, torch.roll by
    (randint(0, jitter), randint(0, jitter)), loss = CE + r_bn * sum_l rescale_l (||rv - var||2 +
    ||rm - mean||2) over the BN layers' input batch (rescale_0 = first_bn_multiplier), the model in
    eval mode, then the per-channel clip to the valid pixel range;
  - CDA, `CDA/recover_cda_tiny.py`: the same after RandomResizedCrop(size, scale=(min_crop, 1)) with
    the min_crop curriculum, and RandomHorizontalFlip, both on the whole batch tensor;
  - G-VBSM, shaoshitong/G_VBSM_Dataset_Condensation `Branch_CIFAR_10/recover/
    data_synthesis_with_svd_with_db_with_all_statistic.py` + utils.py, with one teacher:
    RandomCrop(size, padding=4) + flip + roll, BN hooks on densified statistics (momentum 0.8,
    value of the densified statistic, gradient of the current one), Conv2d input hooks (channel and
    4x4-patch statistics against the training set's, each dropped with probability 0.4), the
    eigenvalue KL term per class, the first hook in module order x first_multiplier;
  - DELT, VILA-Lab/DELT `recover/recover.py`: the early-late rounds (get_round_imgs_indx), the
    augmentation and BN statistics on the active subset, one Adam over the whole batch;
  - the medium selection of DELT's data_selection.py (store_medium);
  - one soft-label student step as SRe2L's relabel_cifar.py trains: mixup (alpha 0.8) of the batch,
    KLDivLoss(batchmean) of log_softmax(student / T) against softmax(teacher / T), AdamW(lr 1e-3,
    wd 0.01) at a cosine-scheduled lr; the teacher is left in train mode as that script leaves it.
Every random draw (augmentation parameters, hook drops, the mixup permutation and lambda) is
made here and stored in the fixture, so the C side replays the same iteration. The teacher is a
tiny BatchNorm ConvNet (DC's ConvNet, width 8, depth 2, 16x16 inputs): the code path is the one
ResNet-18 takes (BN layers in eval mode, hooks on BN and Conv2d inputs), at a size fit for a test.
A few iterations run first so that the Adam moments and the densified statistics are not at their
initial values; their state is stored as the step's input.
"""
import math
import os
import random
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms.functional as TF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402
from torch_models import ConvNet  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "decoupled")
S = 16  # image side
K = 10
CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]
GVBSM_MEAN, GVBSM_STD = [0.5071, 0.4867, 0.4408], [0.2675, 0.2565, 0.2761]


def teacher(seed):
    torch.manual_seed(seed)
    net = ConvNet(3, K, net_width=8, net_depth=2, net_norm="batchnorm", im_size=(S, S))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.3, 2.0)
    return net


def state(net, prefix=""):
    return {prefix + k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def cosine_lr(base, it, total):
    return 0.5 * (1 + np.cos(np.pi * it / total)) * base


def clip(x, mean, std):
    for c in range(3):
        m, s = mean[c], std[c]
        x[:, c] = torch.clamp(x[:, c], -m / s, (1 - m) / s)
    return x


def bn_feature(inp, bn):
    nch = inp.shape[1]
    mean = inp.mean([0, 2, 3])
    var = inp.permute(1, 0, 2, 3).contiguous().reshape([nch, -1]).var(1, unbiased=False)
    return torch.norm(bn.running_var.data - var, 2) + torch.norm(bn.running_mean.data - mean, 2)


def forward_hooked(net, x):
    """logits and the inputs of every BatchNorm2d and Conv2d, in module order"""
    seen = []
    hs = [m.register_forward_hook(lambda m, i, o: seen.append((m, i[0])))
          for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.Conv2d))]
    out = net(x)
    for h in hs:
        h.remove()
    order = [m for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.Conv2d))]
    d = {id(m): i for m, i in seen}
    return out, [(m, d[id(m)]) for m in order]


def crop_pad(x, pad, i, j):
    """torchvision RandomCrop(size, padding=pad) with its drawn offsets (i, j) on a batch tensor"""
    H, W = x.shape[2], x.shape[3]
    return TF.crop(TF.pad(x, [pad, pad, pad, pad], fill=0), i, j, H, W)


# ---------------------------------------------------------------------------------------------
# SRe2L / CDA / DELT: one recover iteration

class Sre2lStep:
    def __init__(self, method, lr, r_bn, first_bn_multiplier, total, mean, std):
        self.method, self.lr, self.r_bn, self.fbm, self.total = method, lr, r_bn, first_bn_multiplier, total
        self.mean, self.std = mean, std

    def run(self, net, inputs, opt, targets, it, draw, active=None):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(self.lr, it, self.total)
        x = inputs if active is None else inputs[active]
        if self.method in ("cda", "delt"):
            i, j, h, w = draw["crop"]
            x = TF.resized_crop(x, i, j, h, w, [x.shape[2], x.shape[3]])
            if draw["flip"]:
                x = TF.hflip(x)
        x = torch.roll(x, shifts=(draw["roll"][0], draw["roll"][1]), dims=(2, 3))
        opt.zero_grad()
        out, hooked = forward_hooked(net, x)
        y = targets if active is None else targets[active]
        loss_ce = nn.CrossEntropyLoss()(out, y)
        feats = [bn_feature(inp, m) for m, inp in hooked if isinstance(m, nn.BatchNorm2d)]
        rescale = [self.fbm] + [1.0] * (len(feats) - 1)
        loss_bn = torch.stack([f * r for f, r in zip(feats, rescale)]).sum()
        loss = loss_ce + self.r_bn * loss_bn
        loss.backward()
        grad = inputs.grad.clone()
        opt.step()
        inputs.data = clip(inputs.data, self.mean, self.std)
        return {"loss": loss.item(), "loss_ce": loss_ce.item(), "loss_bn": loss_bn.item(),
                "bn_terms": torch.stack(feats).detach(), "grad": grad}


def cda_min_crop(it, total, milestone, mode):
    if it < milestone * total:
        if mode == "step":
            return 1.0
        if mode == "linear":
            return 0.08 + (1.0 - 0.08) * (1 - it / (milestone * total))
        return 0.08 + (1.0 - 0.08) * (1 + np.cos(np.pi * it / (milestone * total))) / 2
    return 0.08


def rrc_params(scale):
    return TF_RRC.get_params(torch.zeros(3, S, S), scale, [3.0 / 4.0, 4.0 / 3.0])


from torchvision.transforms import RandomResizedCrop as TF_RRC  # noqa: E402


def draw_sre2l(method, it, total, jitter, milestone=1.0):
    d = {"roll": (random.randint(0, jitter), random.randint(0, jitter))}
    if method in ("cda", "delt"):
        mc = cda_min_crop(it, total, milestone, "cosine")
        d["crop"] = rrc_params([mc, 1.0])
        d["flip"] = bool(torch.rand(1) < 0.5)
        d["min_crop"] = mc
    return d


def pack_draw(d):
    v = [d["roll"][0], d["roll"][1]]
    if "crop" in d:
        v += list(d["crop"]) + [1.0 if d["flip"] else 0.0, d["min_crop"]]
    return np.array(v, dtype=np.float32)


def adam_state(opt, p):
    st = opt.state[p]
    return st["exp_avg"].clone(), st["exp_avg_sq"].clone(), float(st["step"])


def gen_sre2l(method, seed):
    torch.manual_seed(seed)
    random.seed(seed)
    net = teacher(seed)
    net.eval()
    for p in net.parameters():
        p.requires_grad = False
    B = K
    targets = torch.arange(K)
    inputs = torch.randn((B, 3, S, S), requires_grad=True)
    total, lr, r_bn = 40, (0.25 if method == "sre2l" else 0.4), (0.01 if method == "sre2l" else 0.05)
    step = Sre2lStep(method, lr, r_bn, 10.0, total, CIFAR_MEAN, CIFAR_STD)
    opt = torch.optim.Adam([inputs], lr=lr, betas=[0.5, 0.9], eps=1e-8)
    it0 = 7
    for it in range(it0):
        step.run(net, inputs, opt, targets, it, draw_sre2l(method, it, total, 4))
    m, v, t = adam_state(opt, inputs)
    x0 = inputs.detach().clone()
    d = draw_sre2l(method, it0, total, 4)
    r = step.run(net, inputs, opt, targets, it0, d)
    fix = state(net, "teacher.")
    fix.update({"x": x0, "y": targets.float(), "adam_m": m, "adam_v": v, "adam_t": np.array([t], np.float32),
                "cfg": np.array([it0, total, lr, r_bn, 10.0, 4], np.float32), "draw": pack_draw(d),
                "loss": np.array([r["loss"], r["loss_ce"], r["loss_bn"]], np.float32), "bn_terms": r["bn_terms"],
                "grad": r["grad"], "x_after": inputs.detach()})
    write_fixture(os.path.join(OUT, f"{method}_step.bin"), fix)


# ---------------------------------------------------------------------------------------------
# DELT

def delt_slicing(ipc, class_iterations, round_iterations, targets, img_indxer):
    """get_round_imgs_indx: per round, the batch positions of the images it optimises"""
    max_itr = max(class_iterations[c] for c in targets.unique().tolist())
    slicing = [[] for _ in range(max_itr // round_iterations)]
    for c in targets.unique().tolist():
        init = img_indxer.get(c, -1)
        pos = (targets == c).nonzero().flatten().tolist()
        idx = [p - pos[0] + init + 1 for p in pos]
        rounds = class_iterations[c] // round_iterations
        counts = np.ones(rounds, dtype=int) * (ipc // rounds)
        counts[: ipc % rounds] += 1
        cum = np.cumsum(counts)
        for ii, p in zip(idx, pos):
            start = (ii < cum).nonzero()[0][0]
            for r in range(start, len(cum)):
                slicing[r].append(p)
    return slicing


def gen_delt(seed):
    torch.manual_seed(seed)
    random.seed(seed)
    net = teacher(seed)
    net.eval()
    for p in net.parameters():
        p.requires_grad = False
    ipc, ncls, R, total = 4, 3, 10, 30
    targets = torch.arange(ncls).repeat_interleave(ipc)
    # "real" initial images: clipped normals, as the normalised real images lie in the box
    inputs = clip(torch.randn((ipc * ncls, 3, S, S)) * 0.8, CIFAR_MEAN, CIFAR_STD).requires_grad_(True)
    slicing = delt_slicing(ipc, {c: total for c in range(K)}, R, targets, {})
    step = Sre2lStep("delt", 0.25, 0.01, 10.0, total, CIFAR_MEAN, CIFAR_STD)
    opt = torch.optim.Adam([inputs], lr=0.25, betas=[0.5, 0.9], eps=1e-8)
    it0 = 13  # round 1: the first two chunks are active, the last one has not joined yet
    for it in range(8, it0):  # warm-up from round 0 into round 1
        step.run(net, inputs, opt, targets, it, draw_sre2l("delt", it, total, 4), active=slicing[it // R])
    m, v, t = adam_state(opt, inputs)
    x0 = inputs.detach().clone()
    d = draw_sre2l("delt", it0, total, 4)
    active = slicing[it0 // R]
    r = step.run(net, inputs, opt, targets, it0, d, active=active)
    mask = np.zeros(len(targets), np.float32)
    mask[active] = 1
    fix = state(net, "teacher.")
    fix.update({"x": x0, "y": targets.float(), "adam_m": m, "adam_v": v, "adam_t": np.array([t], np.float32),
                "cfg": np.array([it0, total, 0.25, 0.01, 10.0, 4, ipc, R], np.float32), "draw": pack_draw(d),
                "active": mask, "loss": np.array([r["loss"], r["loss_ce"], r["loss_bn"]], np.float32),
                "bn_terms": r["bn_terms"], "grad": r["grad"], "x_after": inputs.detach()})
    # the round membership of a few schedules (ipc, rounds): round r's active image indices
    sched = []
    for ipc_, rounds in [(4, 3), (10, 4), (10, 8), (1, 2), (7, 7)]:
        tg = torch.zeros(ipc_, dtype=torch.long)
        sl = delt_slicing(ipc_, {0: rounds * 5}, 5, tg, {})
        for r_, s in enumerate(sl):
            for p in s:
                sched.append([ipc_, rounds, r_, p])
    fix["schedule"] = np.array(sched, np.float32)
    # store_medium: the images chosen around the median of the true-class probability
    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.35, 0.95, 0.05, 0.6, 0.45, 0.2], np.float32)
    order = np.argsort(scores, kind="stable")  # ascending, as store_medium sorts
    mid = math.ceil(len(order) / 2)
    pos_neg, chosen = -1, []
    for i in range(6):
        chosen.append(order[mid + int(pos_neg * (i + 1) / 2)])
        pos_neg *= -1
    fix["select_scores"] = scores
    fix["select_medium"] = np.array(chosen, np.float32)
    write_fixture(os.path.join(OUT, "delt_step.bin"), fix)


# ---------------------------------------------------------------------------------------------
# G-VBSM (one teacher)

def div_four_mul(v):
    return int(v // 4 * 4) + int(v % 4 > 0) * 4


def conv_stats(inp):
    nch = inp.shape[1]
    mean = inp.mean([0, 2, 3])
    var = inp.permute(1, 0, 2, 3).contiguous().reshape([nch, -1]).var(1, unbiased=False)
    nh, nw = div_four_mul(inp.shape[2]), div_four_mul(inp.shape[3])
    z = F.interpolate(inp, [nh, nw], mode="bilinear")
    b, c = z.shape[0], z.shape[1]
    # einops "b c (u h) (v w) -> (u v) (b c h w)", h = w = 4
    z = z.reshape(b, c, nh // 4, 4, nw // 4, 4).permute(2, 4, 0, 1, 3, 5).reshape((nh // 4) * (nw // 4), -1)
    return mean, var, z.mean([1]), z.var([1], unbiased=False)


class GvbsmRecover:
    """one teacher's hooks and densified state, and the recover iteration of G-VBSM on it"""

    def __init__(self, net, run, mom=0.8, r_loss=0.01, nuc=1.0, tau=4.0, fm=10.0, mean=GVBSM_MEAN, std=GVBSM_STD):
        self.net, self.run, self.mom, self.r_loss, self.nuc, self.tau, self.fm = net, run, mom, r_loss, nuc, tau, fm
        self.mean, self.std = mean, std
        self.modules = [m for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.Conv2d))]
        self.dd = {id(m): None for m in self.modules}
        self.parts = False

    def observe(self, x, drop):
        """a no-grad forward that updates the densified statistics (the verifier's)"""
        with torch.no_grad():
            self.terms(x, drop)

    def terms(self, x, drop):
        net, mom, dd, run = self.net, self.mom, self.dd, self.run
        out, hooked = forward_hooked(net, x)
        terms = []
        ci = 0
        for m, inp in hooked:
            if isinstance(m, nn.BatchNorm2d):
                nch = inp.shape[1]
                mean = inp.mean([0, 2, 3])
                var = inp.permute(1, 0, 2, 3).contiguous().reshape([nch, -1]).var(1, unbiased=False)
                with torch.no_grad():
                    if dd[id(m)] is None:
                        dd[id(m)] = [var, mean]
                    else:
                        dd[id(m)] = [mom * dd[id(m)][0] + (1 - mom) * var, mom * dd[id(m)][1] + (1 - mom) * mean]
                dv, dm = dd[id(m)]
                terms.append(torch.norm(m.running_var.data - (dv + var - var.detach()), 2) +
                             torch.norm(m.running_mean.data - (dm + mean - mean.detach()), 2))
            else:
                dropped = drop[ci]
                ci += 1
                if dropped:
                    terms.append(torch.zeros(()))
                    continue
                mean, var, pm, pv = conv_stats(inp)
                with torch.no_grad():
                    if dd[id(m)] is None:
                        dd[id(m)] = [var, mean, pv, pm]
                    else:
                        o = dd[id(m)]
                        dd[id(m)] = [mom * o[0] + (1 - mom) * var, mom * o[1] + (1 - mom) * mean,
                                     mom * o[2] + (1 - mom) * pv, mom * o[3] + (1 - mom) * pm]
                dv, dm, dpv, dpm = dd[id(m)]
                rm, rv, rpm, rpv = run[id(m)]
                terms.append(torch.norm(rv - (dv + var - var.detach()), 2) + torch.norm(rm - (dm + mean - mean.detach()), 2) +
                             torch.norm(rpm - (dpm + pm - pm.detach()), 2) + torch.norm(rpv - (dpv + pv - pv.detach()), 2))
        return out, terms

    def iteration(self, inputs, targets, opt, lr, it, total, d):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(lr, it, total)
        x = crop_pad(inputs, 4, d["crop"][0], d["crop"][1])
        if d["flip"]:
            x = TF.hflip(x)
        x = torch.roll(x, shifts=(d["roll"][0], d["roll"][1]), dims=(2, 3))
        opt.zero_grad()
        out, terms = self.terms(x, d["drop"])
        loss_ce = nn.CrossEntropyLoss()(out, targets)
        rescale = [self.fm] + [1.0] * (len(terms) - 1)
        loss_r = sum(t * r for t, r in zip(terms, rescale))
        flat = F.adaptive_avg_pool2d(x, (32, 32)).reshape(x.shape[0], -1)
        loss_nuc = 0.0
        for c in set(targets.tolist()):
            sub = flat[targets == c]
            g = sub @ sub.t()
            lam = torch.linalg.eigvals(g).real.float()
            stu = lam.log_softmax(dim=-1)
            tea = (lam / self.tau).softmax(dim=-1)
            loss_nuc = loss_nuc + nn.KLDivLoss(reduction="sum")(stu, tea.detach())
        loss = loss_ce + self.nuc * loss_nuc + self.r_loss * loss_r
        g_nuc = g_r = None
        if self.parts:  # the fixture's per-part gradients
            (g_nuc,) = torch.autograd.grad(self.nuc * loss_nuc, inputs, retain_graph=True)
            (g_r,) = torch.autograd.grad(self.r_loss * loss_r, inputs, retain_graph=True)
        loss.backward()
        grad = inputs.grad.clone()
        opt.step()
        inputs.data = clip(inputs.data, self.mean, self.std)
        return {"loss": loss.item(), "loss_ce": loss_ce.item(), "loss_r": float(loss_r), "loss_nuc": float(loss_nuc),
                "terms": torch.stack([torch.as_tensor(t).reshape(()) for t in terms]).detach(), "grad": grad,
                "grad_nuc": g_nuc, "grad_r": g_r}


def gvbsm_train_stats(net, train, tbatch):
    """the training-set statistics of every Conv2d input (ConvFeatureHook.pre_hook_fn): batch
    statistics weighted by batch size / data_number"""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    run = {id(m): [0.0, 0.0, 0.0, 0.0] for m in convs}
    n = train.shape[0]
    with torch.no_grad():
        for s in range(0, n, tbatch):
            xb = train[s:s + tbatch]
            _, hooked = forward_hooked(net, xb)
            for m, inp in hooked:
                if isinstance(m, nn.Conv2d):
                    st = conv_stats(inp)
                    for q in range(4):
                        run[id(m)][q] = run[id(m)][q] + st[q] * xb.shape[0] / n
    return run


def gen_gvbsm(seed):
    torch.manual_seed(seed)
    random.seed(seed)
    net = teacher(seed)
    net.eval()
    for p in net.parameters():
        p.requires_grad = False
    mom, drop_rate, r_loss, nuc, tau, fm, lr, total, jitter = 0.8, 0.4, 0.01, 1.0, 4.0, 10.0, 0.05, 40, 32
    # the training-set statistics of every Conv2d input (pre_hook_fn): sum of batch statistics
    # weighted by batch size / data_number, in batches (64 in the official code; 16 here) over a
    # small "training set"
    ntrain, tbatch = 40, 16
    train = torch.randn(ntrain, 3, S, S) * 0.9 + 0.1
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    run = gvbsm_train_stats(net, train, tbatch)
    ncls, ipc = 4, 3
    targets = torch.arange(ncls).repeat_interleave(ipc)
    inputs = torch.randn((ncls * ipc, 3, S, S), requires_grad=True)
    rec = GvbsmRecover(net, run, mom, r_loss, nuc, tau, fm)
    rec.parts = True
    modules, dd = rec.modules, rec.dd
    opt = torch.optim.Adam([inputs], lr=lr, betas=[0.5, 0.9], eps=1e-8)

    def iteration(it, d):
        return rec.iteration(inputs, targets, opt, lr, it, total, d)

    def draw(force_drop=None):
        d = {"crop": (random.randint(0, 8), random.randint(0, 8)), "flip": random.random() < 0.5}
        d["roll"] = (random.randint(0, jitter), random.randint(0, jitter))
        d["drop"] = [random.random() > 1.0 - drop_rate for _ in convs]
        if force_drop is not None:
            d["drop"] = force_drop
        return d

    it0 = 5
    for it in range(it0):
        # the second conv hook dropped throughout the warm-up: its densified statistics start
        # in the checked step (the isinstance(self.dd_var, int) path)
        iteration(it, draw(force_drop=[it % 2 == 0, True]))
    m, v, t = adam_state(opt, inputs)
    fix = state(net, "teacher.")
    x0 = inputs.detach().clone()
    # the densified state before the step, per hook in module order (absent: not started)
    for h, mod in enumerate(modules):
        st = dd[id(mod)]
        fix[f"dd{h}_init"] = np.array([0.0 if st is None else 1.0], np.float32)
        if st is not None:
            for q, name in enumerate(["var", "mean", "pvar", "pmean"][: len(st)]):
                fix[f"dd{h}_{name}"] = st[q]
    for ci, mod in enumerate(convs):
        for q, name in enumerate(["mean", "var", "pmean", "pvar"]):
            fix[f"run{ci}_{name}"] = run[id(mod)][q]
    d = draw(force_drop=[False, False])
    r = iteration(it0, d)
    drawv = [d["crop"][0], d["crop"][1], 1.0 if d["flip"] else 0.0, d["roll"][0], d["roll"][1]] + \
            [1.0 if q else 0.0 for q in d["drop"]]
    fix.update({"x": x0, "y": targets.float(), "train": train, "adam_m": m, "adam_v": v,
                "adam_t": np.array([t], np.float32),
                "cfg": np.array([it0, total, lr, r_loss, fm, jitter, mom, nuc, tau, tbatch], np.float32),
                "draw": np.array(drawv, np.float32),
                "loss": np.array([r["loss"], r["loss_ce"], r["loss_r"], r["loss_nuc"]], np.float32),
                "terms": r["terms"], "grad": r["grad"], "grad_nuc": r["grad_nuc"], "grad_r": r["grad_r"],
                "x_after": inputs.detach()})
    write_fixture(os.path.join(OUT, "gvbsm_step.bin"), fix)


# ---------------------------------------------------------------------------------------------
# soft-label student step (SRe2L relabel_cifar.py)

def gen_softlabel(seed):
    torch.manual_seed(seed)
    tnet = teacher(seed)
    snet = teacher(seed + 1)
    tnet.train()  # relabel_cifar.py never calls model_teacher.eval()
    snet.train()
    B, T, epochs, ep = 12, 30.0, 20, 6
    x = torch.randn(B, 3, S, S)  # the batch after RandomCrop + flip
    lam = float(np.random.RandomState(seed).beta(0.8, 0.8))
    perm = torch.randperm(B)
    fix = state(tnet, "teacher.")
    fix.update(state(snet, "student."))
    opt = torch.optim.AdamW(snet.parameters(), lr=0.001, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for _ in range(ep):
        sched.step()
    mixed = lam * x + (1 - lam) * x[perm, :]
    opt.zero_grad()
    out = snet(mixed)
    soft = tnet(mixed).detach()
    loss = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(out / T, dim=1), F.softmax(soft / T, dim=1))
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in snet.parameters()])
    lr_now = opt.param_groups[0]["lr"]
    opt.step()
    fix.update({"x": x, "perm": perm.float(), "cfg": np.array([lam, T, epochs, ep, lr_now], np.float32),
                "mixed": mixed, "logits_s": out.detach(), "logits_t": soft,
                "loss": np.array([loss.item()], np.float32), "grads": grads})
    fix.update(state(snet, "after."))
    fix.update({"teacher_after." + k: v.clone() for k, v in tnet.state_dict().items()
                if k.endswith("running_mean") or k.endswith("running_var")})
    write_fixture(os.path.join(OUT, "softlabel_step.bin"), fix)


# ---------------------------------------------------------------------------------------------
# the augmentation kernels with their input gradients (autograd through torchvision's ops)

def gen_augment(seed):
    torch.manual_seed(seed)
    x = torch.randn(3, 3, 12, 10, requires_grad=True)
    fix = {"x": x.detach().clone()}
    cases = [("rrc0", (2, 1, 7, 5)), ("rrc1", (0, 0, 12, 10)), ("rrc2", (5, 3, 4, 7)), ("rrc3", (0, 4, 11, 3))]
    for name, (i, j, h, w) in cases:
        out = TF.resized_crop(x, i, j, h, w, [12, 10])
        g = torch.randn_like(out)
        (gx,) = torch.autograd.grad((out * g).sum(), x)
        fix.update({name + "_box": np.array([i, j, h, w], np.float32), name + "_out": out, name + "_gout": g,
                    name + "_gx": gx})
    for name, (dy, dx) in [("roll0", (3, 1)), ("roll1", (0, 7)), ("roll2", (12, 10))]:
        out = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        g = torch.randn_like(out)
        (gx,) = torch.autograd.grad((out * g).sum(), x)
        fix.update({name + "_shift": np.array([dy, dx], np.float32), name + "_out": out, name + "_gout": g,
                    name + "_gx": gx})
    for name, (i, j) in [("crop0", (0, 0)), ("crop1", (8, 3)), ("crop2", (4, 4))]:
        out = crop_pad(x, 4, i, j)
        g = torch.randn_like(out)
        (gx,) = torch.autograd.grad((out * g).sum(), x)
        fix.update({name + "_ij": np.array([i, j], np.float32), name + "_out": out, name + "_gout": g,
                    name + "_gx": gx})
    fix["flip_out"] = TF.hflip(x).detach()
    # adaptive average pooling to a larger and to a smaller size (G-VBSM's AdaptiveAvgPool2d)
    for name, (oh, ow) in [("aap0", (24, 20)), ("aap1", (5, 4))]:
        out = F.adaptive_avg_pool2d(x, (oh, ow))
        g = torch.randn_like(out)
        (gx,) = torch.autograd.grad((out * g).sum(), x)
        fix.update({name + "_size": np.array([oh, ow], np.float32), name + "_out": out, name + "_gout": g,
                    name + "_gx": gx})
    # bilinear resize as F.interpolate does it (G-VBSM's patch statistics of sizes not a multiple of 4)
    out = F.interpolate(x, [16, 12], mode="bilinear")
    g = torch.randn_like(out)
    (gx,) = torch.autograd.grad((out * g).sum(), x)
    fix.update({"interp_out": out, "interp_gout": g, "interp_gx": gx})
    write_fixture(os.path.join(OUT, "augment.bin"), fix)


def gen_jpeg(seed):
    """PIL's JPEG of a smooth image with some noise, as the methods save (Image.fromarray(...).save(
    'x.jpg'): quality 75, 4:2:0), decoded by PIL again"""
    import io

    from PIL import Image
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    img = np.stack([128 + 90 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 - c) for c in range(3)], -1)
    img = np.clip(img + rs.randint(-20, 21, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG")
    dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    write_fixture(os.path.join(OUT, "jpeg.bin"), {"img": img.astype(np.float32), "pil_decoded": dec.astype(np.float32),
                                                  "pil_bytes": np.array([len(buf.getvalue())], np.float32)})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    gen_augment(1)
    gen_sre2l("sre2l", 2)
    gen_sre2l("cda", 3)
    gen_delt(4)
    gen_gvbsm(5)
    gen_softlabel(6)
    gen_jpeg(7)
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))
