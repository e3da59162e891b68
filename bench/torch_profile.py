"""PyTorch's per-stage profile of the ANR training step (bench/torch_step.py --profile).

Two views of the same model, weights and inputs as ours (bench/ours.ts --dump):
  * stages timed in isolation, exactly as bench/profile-ours.ts times ours: each stage's forward
    (autograd recording, as in training) on inputs of the real shapes, and its forward + backward
    of Σ(out ⊙ c) for a fixed random cotangent c; the least (and the median) wall and CPU time
    over --steps calls after one warm-up;
  * torch.profiler over whole training steps, with a record_function range per stage of the
    forward and around backward, clipping and Adam: each stage's time inside the real step, and the
    operators with their FLOPs.
"""
import statistics, time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile as torch_profiler, record_function

from torch_step import load, make_step, noisy_coords

STAGES = ['tokenizer', 'encoder', 'decoder', 'weight head', 'PE', 'localized attention', 'MLP', 'loss']


def time_it(call, reps):
    """Least (other work on the machine only adds time) and median wall and CPU time in ms of
    call(), after one untimed call."""
    call()
    walls, cpus = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        call()
        walls.append((time.perf_counter() - t0) * 1e3)
        cpus.append((time.process_time() - c0) * 1e3)
    return {'wall': min(walls), 'cpu': min(cpus),
            'wall_median': statistics.median(walls), 'cpu_median': statistics.median(cpus)}


def profile(a):
    meta, model, imgs, noises = load(a.init, a.attention)
    B, S = meta['batch'], meta['size']
    reps = a.steps
    hy = model.hyponet
    # Stage inputs of the real shapes, computed once.
    with torch.no_grad():
        x = 2 * imgs - 1
        tokens = model.tokenizer(x)
        encoded = model.tinr_enc(tokens)
        decoded = model.tinr_dec(model.wtokens.expand(B, -1, -1), encoded)
        dtoken = model.weight_head(decoded)
        pe = hy.pe(noisy_coords(B, S, S, noises[0]))
        attended = hy.attention(pe, dtoken)
        pred = hy.run_mlp(attended).reshape(B, S, S, -1).permute(0, 3, 1, 2).contiguous()
    noise = noises[0]
    wt = lambda: model.wtokens.expand(B, -1, -1)
    # name -> (function of its input, the input, whether the step needs the input's gradient)
    stages = {
        'tokenizer': (model.tokenizer, x, False),
        'encoder': (model.tinr_enc, tokens, True),
        'decoder': (lambda e: model.tinr_dec(wt(), e), encoded, True),
        'weight head': (model.weight_head, decoded, True),
        'PE': (lambda n: hy.pe(noisy_coords(B, S, S, n)), noise, None),  # no backward in the step
        'localized attention': (lambda d: hy.attention(pe, d), dtoken, True),
        'MLP': (hy.run_mlp, attended, True),
        'loss': (lambda p: F.mse_loss(p, x), pred, True),
    }
    params = list(model.parameters())
    results = {}
    gen = torch.Generator().manual_seed(1)
    for name, (f, inp, needs_grad) in stages.items():
        inp = inp.detach().clone().requires_grad_(bool(needs_grad))
        fwd = time_it(lambda: f(inp), reps)
        both = None
        if needs_grad is not None:
            cot = torch.randn(f(inp).shape, generator=gen)

            def fb():
                (f(inp) * cot).sum().backward()
                for p in params:
                    p.grad = None
                inp.grad = None
            both = time_it(fb, reps)
        results[name] = {'forward': fwd, 'forward_backward': both}

    # The whole step, timed the same way, and its parts.
    step = make_step(model, meta)
    whole = {}
    loss_f = lambda: F.mse_loss(
        hy(noisy_coords(B, S, S, None), model.rtokens(x)).reshape(B, S, S, -1).permute(0, 3, 1, 2), x)
    whole['forward'] = time_it(loss_f, reps)

    def fb_all():
        loss_f().backward()
        for p in params:
            p.grad = None
    whole['forward_backward'] = time_it(fb_all, reps)
    loss_f().backward()
    opt = torch.optim.Adam(params, lr=meta['adam']['lr'], betas=(meta['adam']['beta1'], meta['adam']['beta2']),
                           eps=meta['adam']['eps'])
    whole['clip_adam'] = time_it(lambda: (torch.nn.utils.clip_grad_norm_(params, 1.0), opt.step()), reps)
    whole['fused_step'] = time_it(lambda: step(imgs), reps)

    # torch.profiler over whole steps, with a range per stage.
    def labeled_step():
        opt.zero_grad()
        with record_function('forward'):
            xx = 2 * imgs - 1
            with record_function('tokenizer'):
                t = model.tokenizer(xx)
            with record_function('encoder'):
                e = model.tinr_enc(t)
            with record_function('decoder'):
                d = model.tinr_dec(wt(), e)
            with record_function('weight head'):
                dt = model.weight_head(d)
            with record_function('PE'):
                p = hy.pe(noisy_coords(B, S, S, None))
            with record_function('localized attention'):
                y = hy.attention(p, dt)
            with record_function('MLP'):
                y = hy.run_mlp(y)
            with record_function('loss'):
                loss = F.mse_loss(y.reshape(B, S, S, -1).permute(0, 3, 1, 2), xx)
        with record_function('backward'):
            loss.backward()
        with record_function('clip'):
            torch.nn.utils.clip_grad_norm_(params, 1.0)
        with record_function('adam'):
            opt.step()

    labeled_step()
    with torch_profiler(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(reps):
            labeled_step()
    ev = prof.key_averages()
    ranges = {e.key: e.cpu_time_total / 1e3 / reps for e in ev
              if e.key in STAGES + ['forward', 'backward', 'clip', 'adam']}
    ops = sorted((e for e in ev if e.key.startswith('aten::') or 'Backward' in e.key),
                 key=lambda e: -e.self_cpu_time_total)[:15]
    top = [{'op': e.key, 'calls': e.count // reps, 'self_ms': e.self_cpu_time_total / 1e3 / reps,
            'gflops_per_s': (e.flops / (e.self_cpu_time_total / 1e6) / 1e9) if e.flops else None} for e in ops]
    return {'side': 'torch', 'config': meta['name'], 'torch': torch.__version__, 'threads': torch.get_num_threads(),
            'attention': hy.form, 'reps': reps, 'measured': results, 'whole': whole,
            'profiler': {'ranges_ms_per_step': ranges, 'top_ops': top}}
