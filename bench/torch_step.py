#!/usr/bin/python3
"""PyTorch (CPU) baseline for the ANR training step and hyponet decode throughput.

Measures, for the fixed benchmark configuration that mirrors the TypeScript bench config:
  * the wall time of one full training step (zero_grad, forward, MSE loss, backward,
    clip_grad_norm_(1.0), Adam(lr 5e-5, betas (0.9, 0.99), eps 1e-8).step()), median over --steps;
  * decode throughput: with the R-tokens of the batch fixed, the hyponet forward under no_grad
    at --decode-size x --decode-size pixel-centre coordinates, in pixels/s over the batch;
  * peak RSS and parameter count.

The model is written from docs/conventions.md (§2–§7, §10, §11): ImgTokenizer ->
TInrEncoder (shortcut_every=0) -> TInrDecoder -> direct R-tokens -> ANR hyponet (Fourier PE,
thresholded-softmax cross-attention to the R-tokens, ReLU MLP). Loss is the l2 image loss on the
[-1,1] image with coordinate noise (section 7) on.

Usage: /usr/bin/python3 bench/torch_step.py [--threads N] [--json] [--check-learning]
(Debian's torch lives in /usr/bin/python3; a pyenv `python3` on PATH does not see it.)
Note: Debian's torch is built with BLAS_INFO=generic and calls whatever libblas.so.3 is installed.
With the default netlib reference BLAS, matmuls are ~4 GFLOP/s and dominate the step time;
LD_LIBRARY_PATH=<dir with OpenBLAS's libblas.so.3> gives ~4-5x faster steps.
"""
import argparse, json, math, resource, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_coord_grid(h, w):
    """(H, W, 2) pixel-centre grid in (-1, 1); channel 0 = row (y), channel 1 = column (x)."""
    ys = -1 + 2 * (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = -1 + 2 * (torch.arange(w, dtype=torch.float32) + 0.5) / w
    return torch.stack(torch.meshgrid(ys, xs, indexing='ij'), dim=-1)


class Attention(nn.Module):
    def __init__(self, dim, n_head, head_dim):
        super().__init__()
        inner = n_head * head_dim
        self.n_head, self.scale = n_head, head_dim ** -0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x, ctx):
        B, h = x.shape[0], self.n_head
        q = self.to_q(x)
        k, v = self.to_kv(ctx).chunk(2, dim=-1)  # first `inner` columns are k, the rest v
        q, k, v = (t.reshape(B, t.shape[1], h, -1).transpose(1, 2) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, x.shape[1], -1)
        return self.to_out(o)


class FeedForward(nn.Sequential):
    def __init__(self, dim, ff_dim):
        super().__init__(nn.Linear(dim, ff_dim), nn.GELU(), nn.Identity(), nn.Linear(ff_dim, dim))


class ImgTokenizer(nn.Module):
    def __init__(self, img_size, patch, pad, dim, in_ch=3):
        super().__init__()
        self.patch, self.pad = patch, pad
        n = ((img_size + 2 * pad) // patch) ** 2
        self.prefc = nn.Linear(in_ch * patch * patch, dim)
        self.posemb = nn.Parameter(torch.randn(n, dim))

    def forward(self, x):  # unfold gives channel-major patch vectors, patches row-major
        p = F.unfold(x, self.patch, stride=self.patch, padding=self.pad).transpose(1, 2)
        return self.prefc(p) + self.posemb


class TInrEncoder(nn.Module):
    def __init__(self, dim, depth, n_head, head_dim, ff_dim):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleList([
            nn.LayerNorm(dim), Attention(dim, n_head, head_dim),
            nn.LayerNorm(dim), FeedForward(dim, ff_dim)]) for _ in range(depth))

    def forward(self, x):  # shortcut_every = 0, no final norm
        for n1, attn, n2, ff in self.layers:
            y = n1(x)
            x = x + attn(y, y)
            x = x + ff(n2(x))
        return x


class TInrDecoder(nn.Module):
    def __init__(self, dim, depth, n_head, head_dim, ff_dim):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleList([
            nn.LayerNorm(dim), Attention(dim, n_head, head_dim),
            nn.LayerNorm(dim), Attention(dim, n_head, head_dim),
            nn.LayerNorm(dim), FeedForward(dim, ff_dim)]) for _ in range(depth))

    def forward(self, x, enc):  # cross-attention K/V from the raw encoder output
        for na, sa, nb, ca, nc, ff in self.layers:
            y = na(x)
            x = x + sa(y, y)
            x = x + ca(nb(x), enc)
            x = x + ff(nc(x))
        return x


class AnrHyponet(nn.Module):
    def __init__(self, hidden, pe_dim, pe_sigma, depth, tau, n_head=6, head_dim=64, in_dim=2, out_dim=3):
        super().__init__()
        assert in_dim * pe_dim == hidden, 'adaptive_idim padding not implemented'
        K = pe_dim // 2
        self.register_buffer('freqs', torch.exp(torch.linspace(0, math.log(pe_sigma), K)))
        self.n_head, self.scale, self.tau = n_head, head_dim ** -0.5, tau
        inner = n_head * head_dim
        self.to_q = nn.Linear(hidden, inner, bias=False)
        self.to_k = nn.Linear(hidden, inner, bias=False)
        self.to_v = nn.Linear(hidden, inner, bias=False)
        self.to_out = nn.Linear(inner, hidden)
        layers = []
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden, out_dim))

    def pe(self, c):  # coordinate-major: [cos(pi y w), cos(pi x w), sin(pi y w), sin(pi x w)]
        a = (c.unsqueeze(-1) * self.freqs).flatten(-2) * math.pi
        return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)

    def forward(self, coord, dtoken):  # coord (B, N, 2), dtoken (B, T, hidden)
        B, N, h = coord.shape[0], coord.shape[1], self.n_head
        x = self.pe(coord)
        q, k, v = self.to_q(x), self.to_k(dtoken), self.to_v(dtoken)
        q, k, v = (t.reshape(B, t.shape[1], h, -1).transpose(1, 2) for t in (q, k, v))
        p = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        p = torch.relu(p - self.tau)
        p = p / p.sum(dim=-1, keepdim=True)
        o = (p @ v).transpose(1, 2).reshape(B, N, -1)
        return self.mlp(self.to_out(o))


class AnrModel(nn.Module):
    def __init__(self, a):
        super().__init__()  # creation order follows docs/conventions.md §10.2
        self.hyponet = AnrHyponet(a.hidden, a.pe_dim, a.pe_sigma, a.anr_depth, a.att_threshold)
        self.tokenizer = ImgTokenizer(a.img_size, a.patch, a.padding, a.dim)
        self.encoder = TInrEncoder(a.dim, a.enc_depth, a.n_head, a.head_dim, a.ff_dim)
        self.decoder = TInrDecoder(a.dim, a.dec_depth, a.n_head, a.head_dim, a.ff_dim)
        self.postfc = nn.Sequential(nn.LayerNorm(a.dim), nn.Linear(a.dim, a.hidden))
        self.dtoken_b = nn.Parameter(torch.randn(a.n_tokens, a.hidden))
        self.dtoken_w = nn.Parameter(torch.ones(a.n_tokens, a.hidden))
        self.wtokens = nn.Parameter(torch.randn(a.n_tokens, a.dim))

    def rtokens(self, x):  # x in [-1, 1]
        enc = self.encoder(self.tokenizer(x))
        t = self.decoder(self.wtokens.expand(x.shape[0], -1, -1), enc)
        return self.dtoken_w * self.postfc(t) + self.dtoken_b

    def loss(self, img, coord_noise=True):
        B, _, H, W = img.shape
        x = 2 * img - 1
        coord = make_coord_grid(H, W).reshape(1, H * W, 2).expand(B, -1, -1)
        if coord_noise:
            u = 1.0 / max(H, W)
            coord = coord + torch.clamp(0.3 * u * torch.randn(B, H * W, 2), -0.5 * u, 0.5 * u)
        pred = self.hyponet(coord, self.rtokens(x)).reshape(B, H, W, 3).permute(0, 3, 1, 2)
        return F.mse_loss(pred, x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    for name, default, typ in [
            ('threads', 1, int), ('warmup', 3, int), ('steps', 20, int), ('decode-size', 128, int),
            ('batch', 8, int), ('img-size', 32, int), ('patch', 4, int), ('padding', 0, int),
            ('dim', 128, int), ('enc-depth', 2, int), ('dec-depth', 2, int), ('n-head', 4, int),
            ('head-dim', 32, int), ('ff-dim', 512, int), ('n-tokens', 64, int), ('hidden', 128, int),
            ('pe-dim', 64, int), ('pe-sigma', 1024.0, float), ('att-threshold', 0.006, float),
            ('anr-depth', 3, int), ('lr', 5e-5, float), ('seed', 0, int)]:
        ap.add_argument('--' + name, type=typ, default=default)
    ap.add_argument('--json', action='store_true', help='print one line of JSON')
    ap.add_argument('--check-learning', action='store_true', help='print loss at first and last step')
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    imgs = torch.rand(a.batch, 3, a.img_size, a.img_size)
    model = AnrModel(a)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.99), eps=1e-8)

    def step():
        opt.zero_grad()
        loss = model.loss(imgs, coord_noise=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    losses, times = [], []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        losses.append(step())
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1e3)

    # Decode throughput: fixed R-tokens, hyponet forward at decode_size^2 coordinates per image.
    S = a.decode_size
    with torch.no_grad():
        dtoken = model.rtokens(2 * imgs - 1)
        coord = make_coord_grid(S, S).reshape(1, S * S, 2).expand(a.batch, -1, -1).contiguous()
        model.hyponet(coord, dtoken)  # warm-up
        dts = []
        for _ in range(3):
            t0 = time.perf_counter()
            model.hyponet(coord, dtoken)
            dts.append(time.perf_counter() - t0)
    decode_pps = a.batch * S * S / statistics.median(dts)

    res = {'torch': torch.__version__, 'threads': a.threads,
           'step_ms_median': statistics.median(times), 'step_ms_all': [round(t, 3) for t in times],
           'decode_pixels_per_s': decode_pps,
           'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           'n_params': n_params}
    if a.check_learning:
        res['loss_first'], res['loss_last'] = losses[0], losses[-1]
    if a.json:
        print(json.dumps(res))
        return
    print(f'torch {res["torch"]}, threads {a.threads}, params {n_params}')
    print(f'train step (batch {a.batch}, {a.img_size}x{a.img_size}): median {res["step_ms_median"]:.2f} ms '
          f'over {a.steps} steps (min {min(times):.2f}, max {max(times):.2f})')
    print(f'decode {S}x{S} x {a.batch}: {decode_pps:,.0f} pixels/s')
    print(f'peak RSS {res["peak_rss_mib"]:.1f} MiB')
    if a.check_learning:
        print(f'loss: first step {losses[0]:.6f}, last step (#{len(losses)}) {losses[-1]:.6f}')


if __name__ == '__main__':
    main()
