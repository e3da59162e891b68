#!/usr/bin/python3
"""PyTorch (CPU) side of the ANR benchmark: the same model, weights, inputs and step as ours.

bench/ours.ts --dump DIR writes DIR/cfg.json (our parsed model config, batch, image size, the
attention form our model uses, Adam's settings) and DIR/init.safetensors (our initial weights under
the reference's state_dict names, the images, the coordinate noise of the first two steps). This
script builds the model from that config with the reference's module names, loads the weights
strictly, and then:

  * bench (default): times the full training step (zero_grad, forward, MSE loss, backward,
    clip_grad_norm_(1.0), Adam.step()), median over --steps after --warmup; the first two steps use
    our noise, so their losses and gradient norms check the equality of the work; then decode
    throughput (the hyponet under no_grad at --decode-size² pixel centres, R-tokens fixed);
  * --profile: per-stage times (bench/torch_profile.py);
  * --check: only the losses and gradient norms of the first two steps, and each parameter's
    gradient norm in the first (test/bench-torch.test.ts).

The model follows docs/conventions.md (§2–§7, §10, §11): ImgTokenizer -> TInrEncoder -> TInrDecoder
-> R-tokens -> ANR hyponet (Fourier PE, thresholded-softmax cross-attention to the R-tokens, ReLU
MLP), l2 loss on the [-1, 1] image with coordinate noise. The hyponet attention is computed in the
form our model uses (cfg.json's "attention", or --attention): "direct" (the reference's) or "folded"
(q kᵀ = x (W_qᵀ kᵀ), Σ_h p_h v_h W_out,hᵀ = p (v W_outᵀ): the same function, fewer FLOPs at small T).

Usage: /usr/bin/python3 bench/torch_step.py --init DIR [--threads N] [--json]
(Debian's torch lives in /usr/bin/python3; a pyenv `python3` on PATH does not see it.)
Debian's torch calls whatever libblas.so.3 is installed: install libopenblas0-pthread (the netlib
reference BLAS is ~5x slower).
"""
import argparse, json, math, os, re, resource, statistics, struct, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    """name -> float32 tensor of a safetensors file (the F32 tensors that ours writes)."""
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack('<Q', buf[:8])
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        if info['dtype'] != 'F32':
            raise ValueError(f'{path}: {name} is {info["dtype"]}, expected F32')
        a, b = info['data_offsets']
        out[name] = torch.frombuffer(bytearray(buf[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(info['shape'])
    return out


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
        self.to_out = nn.Sequential(nn.Linear(inner, dim))

    def forward(self, x, ctx):
        B, h = x.shape[0], self.n_head
        q = self.to_q(x)
        k, v = self.to_kv(ctx).chunk(2, dim=-1)  # first `inner` columns are k, the rest v
        q, k, v = (t.reshape(B, t.shape[1], h, -1).transpose(1, 2) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, x.shape[1], -1)
        return self.to_out(o)


class FeedForward(nn.Module):
    def __init__(self, dim, ff_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Identity(), nn.Linear(ff_dim, dim))

    def forward(self, x):
        return self.net(x)


class PreNorm(nn.Module):
    """LayerNorm of the query stream only; a cross-attention context passes through raw."""

    def __init__(self, dim, fn):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim), fn

    def forward(self, x, *ctx):
        y = self.norm(x)
        return self.fn(y, *ctx) if ctx else (self.fn(y, y) if isinstance(self.fn, Attention) else self.fn(y))


class ImgTokenizer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.patch, self.pad = a['patch_size'], a['padding']
        n = ((a['input_size'] + 2 * self.pad) // self.patch) ** 2
        self.posemb = nn.Parameter(torch.zeros(n, a['dim']))
        self.prefc = nn.Linear(a['img_channels'] * self.patch ** 2, a['dim'])

    def forward(self, x):  # unfold gives channel-major patch vectors, patches row-major
        p = F.unfold(x, self.patch, stride=self.patch, padding=self.pad).transpose(1, 2)
        return self.prefc(p) + self.posemb


class TInrEncoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        assert a['shortcut_every'] == 0, 'the bench model has no long skips'
        d = a['dim']
        self.layers = nn.ModuleList(nn.ModuleList([
            PreNorm(d, Attention(d, a['n_head'], a['head_dim'])),
            PreNorm(d, FeedForward(d, a['ff_dim']))]) for _ in range(a['depth']))

    def forward(self, x):  # no final norm
        for attn, ff in self.layers:
            x = x + attn(x)
            x = x + ff(x)
        return x


class TInrDecoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        d = a['dim']
        self.hypobuilder = nn.ModuleList(nn.ModuleList([
            PreNorm(d, Attention(d, a['n_head'], a['head_dim'])),
            PreNorm(d, Attention(d, a['n_head'], a['head_dim'])),
            PreNorm(d, FeedForward(d, a['ff_dim']))]) for _ in range(a['depth']))

    def forward(self, x, enc):  # cross-attention K/V from the raw encoder output
        for sa, ca, ff in self.hypobuilder:
            x = x + sa(x)
            x = x + ca(x, enc)
            x = x + ff(x)
        return x


class HypoAttention(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.to_q = nn.Linear(hidden, inner, bias=False)
        self.to_k = nn.Linear(hidden, inner, bias=False)
        self.to_v = nn.Linear(hidden, inner, bias=False)
        self.to_out = nn.Linear(inner, hidden)


class AnrHyponet(nn.Module):
    def __init__(self, a, form):
        super().__init__()
        assert a['in_dim'] * a['pe_dim'] == a['hidden_dim'] and a['use_pe'] and a['sphere'] is None, \
            'the bench model has a plain PE without padding'
        assert a['out_scale'] == 1 and a['out_bias'] == 0
        hidden, K = a['hidden_dim'], a['pe_dim'] // 2
        self.register_buffer('freqs', torch.exp(torch.linspace(0, math.log(a['pe_sigma']), K)), persistent=False)
        self.n_head, self.head_dim, self.tau, self.form = a['n_head'], a['head_dim'], a['att_threshold'], form
        self.attn = HypoAttention(hidden, self.n_head * self.head_dim)
        self.mlp = nn.ModuleList(
            [nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU()) for _ in range(a['depth'] - 1)]
            + [nn.Linear(hidden, a['out_dim'])])

    def pe(self, c):  # coordinate-major: [cos(pi y w), cos(pi x w), sin(pi y w), sin(pi x w)]
        a = (c.unsqueeze(-1) * self.freqs).flatten(-2) * math.pi
        return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)

    def attention(self, x, dtoken):  # x (B, N, hidden) encoded coordinates, dtoken (B, T, hidden)
        B, N, hidden = x.shape
        h, d, T = self.n_head, self.head_dim, dtoken.shape[1]
        at = self.attn
        k = at.to_k(dtoken).reshape(B, T, h, d).transpose(1, 2)  # (B, h, T, d)
        v = at.to_v(dtoken).reshape(B, T, h, d).transpose(1, 2)
        if self.form == 'folded':
            qk = (k @ at.to_q.weight.reshape(h, d, hidden)) * d ** -0.5  # (B, h, T, hidden)
            logits = (x @ qk.permute(0, 3, 1, 2).reshape(B, hidden, h * T)).reshape(B, N, h, T)
        else:
            q = at.to_q(x).reshape(B, N, h, d).transpose(1, 2)
            logits = (q @ k.transpose(-1, -2) * d ** -0.5).transpose(1, 2)  # (B, N, h, T)
        p = torch.softmax(logits, dim=-1)
        if self.tau is not None:
            p = torch.relu(p - self.tau)
            p = p / p.sum(dim=-1, keepdim=True)
        if self.form == 'folded':
            wo = at.to_out.weight.reshape(hidden, h, d).permute(1, 2, 0)  # (h, d, hidden)
            vo = (v @ wo).reshape(B, h * T, hidden)
            return p.reshape(B, N, h * T) @ vo + at.to_out.bias
        o = (p.transpose(1, 2) @ v).transpose(1, 2).reshape(B, N, h * d)
        return at.to_out(o)

    def run_mlp(self, y):
        for layer in self.mlp:
            y = layer(y)
        return y

    def forward(self, coord, dtoken):  # coord (B, N, 2)
        return self.run_mlp(self.attention(self.pe(coord), dtoken))


class AnrModel(nn.Module):
    """The hyper-network with the reference's state_dict names (docs/conventions.md §10.3)."""

    def __init__(self, cfg, form):
        super().__init__()
        if cfg['tokenizer']['name'] != 'ImgTokenizer' or cfg['hyponet']['name'] != 'ANR' or not cfg['direct_wtoken']:
            raise ValueError('torch_step.py builds the ANR image model only')
        a, dec = cfg['hyponet']['args'], cfg['tinr_dec']['args']
        self.hyponet = AnrHyponet(a, form)
        self.tokenizer = ImgTokenizer(cfg['tokenizer']['args'])
        self.tinr_enc = TInrEncoder(cfg['tinr_enc']['args'])
        self.tinr_dec = TInrDecoder(dec)
        T, hidden = a['token_len'], a['hidden_dim']
        self.base_params = nn.ParameterDict({'dtoken_w': nn.Parameter(torch.ones(T, hidden)),
                                             'dtoken_b': nn.Parameter(torch.zeros(T, hidden))})
        self.wtoken_postfc = nn.ModuleDict(
            {'dtoken': nn.Sequential(nn.LayerNorm(dec['dim']), nn.Linear(dec['dim'], hidden))})
        self.wtokens = nn.Parameter(torch.zeros(T, dec['dim']))

    def weight_head(self, t):
        return self.wtoken_postfc['dtoken'](t) * self.base_params['dtoken_w'] + self.base_params['dtoken_b']

    def rtokens(self, x):  # x in [-1, 1]
        enc = self.tinr_enc(self.tokenizer(x))
        return self.weight_head(self.tinr_dec(self.wtokens.expand(x.shape[0], -1, -1), enc))


def noisy_coords(B, H, W, noise, device='cpu'):
    """The pixel-centre grid plus clip(0.3 u N(0,1), ±0.5 u), u = 1/max(H, W); noise (B, H, W, 2) or None."""
    coord = make_coord_grid(H, W).to(device).reshape(1, H * W, 2).expand(B, -1, -1)
    u = 1.0 / max(H, W)
    n = torch.randn(B, H * W, 2, device=device) if noise is None else noise.reshape(B, H * W, 2)
    return coord + torch.clamp(0.3 * u * n, -0.5 * u, 0.5 * u)


def image_loss(model, img, noise=None):
    B, _, H, W = img.shape
    x = 2 * img - 1
    pred = model.hyponet(noisy_coords(B, H, W, noise, img.device), model.rtokens(x)).reshape(B, H, W, -1).permute(0, 3, 1, 2)
    return F.mse_loss(pred, x)


def load(init_dir, form=None):
    """(meta, model with our initial weights, images, [noise of step 0, step 1])."""
    with open(os.path.join(init_dir, 'cfg.json')) as f:
        meta = json.load(f)
    t = read_safetensors(os.path.join(init_dir, 'init.safetensors'))
    model = AnrModel(meta['config'], form or meta['attention'])
    model.load_state_dict({k: v for k, v in t.items() if not k.startswith('input.')}, strict=True)
    return meta, model, t['input.imgs'], [t['input.noise.0'], t['input.noise.1']]


def make_step(model, meta):
    params = list(model.parameters())
    ad = meta['adam']
    opt = torch.optim.Adam(params, lr=ad['lr'], betas=(ad['beta1'], ad['beta2']), eps=ad['eps'])

    def step(imgs, noise=None):
        opt.zero_grad()
        loss = image_loss(model, imgs, noise)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item(), norm.item()
    return step


def bench(a):
    meta, model, imgs, noises = load(a.init, a.attention)
    dev = torch.device(a.device)
    model.to(dev)
    imgs, noises = imgs.to(dev), [n.to(dev) for n in noises]
    # On a GPU the kernels run asynchronously: every timed region ends in a synchronisation.
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    step = make_step(model, meta)
    losses, norms, times = [], [], []
    c0 = cpu = wall = 0.0
    for i in range(a.warmup + a.steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        loss, norm = step(imgs, noises[i] if i < len(noises) else None)
        dt = time.perf_counter() - t0
        losses.append(loss)
        norms.append(norm)
        if i >= a.warmup:
            times.append(dt * 1e3)
            cpu += time.process_time() - c0
            wall += dt
    train_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Decode: R-tokens fixed, the hyponet under no_grad on a decode_size² grid, after one call on 64².
    S, B = a.decode_size, meta['decode_batch']
    with torch.no_grad():
        dtoken = model.rtokens(2 * imgs[:B] - 1)
        grid = lambda n: make_coord_grid(n, n).to(dev).reshape(1, n * n, 2).expand(B, -1, -1).contiguous()
        model.hyponet(grid(64), dtoken)
        coord = grid(S)
        sync()
        dts = []
        for _ in range(a.decode_reps):
            t0 = time.perf_counter()
            model.hyponet(coord, dtoken)
            sync()
            dts.append(time.perf_counter() - t0)
    return {
        'side': 'torch', 'config': meta['name'], 'torch': torch.__version__, 'threads': torch.get_num_threads(),
        'device': str(dev) + (f' ({torch.cuda.get_device_name(dev)})' if dev.type == 'cuda' else ''),
        'attention': model.hyponet.form, 'n_params': sum(p.numel() for p in model.parameters()),
        'step_ms_median': statistics.median(times), 'step_ms_all': [round(t, 1) for t in times],
        'cpu_per_wall': cpu / wall if wall else None,
        'decode_batch': B, 'decode_pixels_per_s': B * S * S / statistics.median(dts), 'decode_ms_all': [round(d * 1e3) for d in dts],
        'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'train_peak_rss_mib': train_rss,
        'losses': losses[:2], 'grad_norms': norms[:2], 'loss_last': losses[-1],
        'blas': blas_info(),
    }


def check(a):
    """The first two training steps on our weights, images and noise: their losses and gradient norms."""
    meta, model, imgs, noises = load(a.init, a.attention)
    image_loss(model, imgs, noises[0]).backward()  # per-tensor gradient norms of the first step
    param_norms = {k: p.grad.norm().item() for k, p in model.named_parameters()}
    step = make_step(model, meta)
    res = [step(imgs, n) for n in noises]
    return {'side': 'torch', 'config': meta['name'], 'attention': model.hyponet.form,
            'losses': [r[0] for r in res], 'grad_norms': [r[1] for r in res], 'param_grad_norms': param_norms}


def blas_info():
    """The BLAS torch was built for and the libblas.so.3 it really loaded (Debian's torch is BLAS-generic)."""
    keys = ('BLAS_INFO', 'LAPACK_INFO', 'USE_MKLDNN', 'USE_OPENMP', 'PERF_WITH_AVX2')
    kv = re.findall(r'(\w+)=([^,\n]*)', torch.__config__.show())
    line = ', '.join(f'{k}={v}' for k, v in kv if k in keys)
    loaded = ''
    try:
        with open('/proc/self/maps') as f:
            libs = {l.split()[-1] for l in f if 'blas' in l.lower() and '/' in l}
        loaded = ', '.join(sorted(os.path.realpath(p) for p in libs))
    except OSError:
        pass
    return {'config': line, 'loaded': loaded, 'parallel': torch.__config__.parallel_info().splitlines()[:6]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--init', required=True, help='directory written by bench/ours.ts --dump')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--decode-size', type=int, default=128)
    ap.add_argument('--decode-reps', type=int, default=2)
    ap.add_argument('--attention', choices=['direct', 'folded'], help="override cfg.json's form")
    ap.add_argument('--profile', action='store_true', help='per-stage profile (bench/torch_profile.py)')
    ap.add_argument('--check', action='store_true', help="only the first two steps' losses and gradient norms")
    ap.add_argument('--json', action='store_true', help='print one line of JSON')
    ap.add_argument('--device', default='cpu', help='cpu, or cuda for the GPU benchmark (bench/gpu.sh)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.profile:
        import torch_profile
        res = torch_profile.profile(a)
    elif a.check:
        res = check(a)
    else:
        res = bench(a)
    if a.json:
        print(json.dumps(res))
    else:
        print(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
