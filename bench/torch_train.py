#!/usr/bin/env python3
"""PyTorch (CPU) reference for Darkslim's training benchmark: builds the same network from a darknet
.cfg (conv with groups/BN, leaky/mish/swish/logistic/relu/linear, maxpool with darknet padding,
route with groups, shortcut, upsample, avgpool, scale_channels, dropout, yolo) and times training
steps (forward, a YOLO-style loss, backward, SGD with momentum) at a given batch size.
Prints one JSON line: {"imagesPerSecond": ..., "msPerIteration": ..., "threads": ...}.
Never a test dependency: Debian's python3-torch (apt-get install python3-torch)."""
import argparse, json, re, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def parse_cfg(path):
    sections = []
    for raw in open(path):
        line = re.split(r'[#;]', raw, 1)[0].strip()
        if not line:
            continue
        if line.startswith('['):
            sections.append({'type': line.strip('[]').strip(), 'opts': {}})
        elif '=' in line and sections:
            k, v = line.split('=', 1)
            sections[-1]['opts'].setdefault(k.strip(), v.strip())
    return sections


def num(v, cast=int):
    m = re.match(r'\s*-?[0-9.]+', v)
    return cast(float(m.group(0))) if cast is int else cast(m.group(0))


def act(name):
    return {
        'leaky': lambda x: F.leaky_relu(x, 0.1), 'linear': lambda x: x, 'logistic': torch.sigmoid, 'relu': F.relu,
        'mish': lambda x: x * torch.tanh(F.softplus(x)), 'swish': lambda x: x * torch.sigmoid(x), 'relu6': F.relu6,
        'tanh': torch.tanh,
    }[name]


class Net(nn.Module):
    def __init__(self, sections):
        super().__init__()
        net = sections[0]['opts']
        self.w, self.h, c = num(net['width']), num(net['height']), num(net.get('channels', '3'))
        self.layers = sections[1:]
        self.mods = nn.ModuleList()
        self.shapes = []  # channels per layer
        self.heads = []
        for i, s in enumerate(self.layers):
            o = s['opts']
            t = s['type']
            prev = c if i == 0 else self.shapes[-1]
            m = nn.Identity()
            out = prev
            if t in ('convolutional', 'conv'):
                f, k, st = num(o.get('filters', '1')), num(o.get('size', '1')), num(o.get('stride', '1'))
                pad = k // 2 if num(o.get('pad', '0')) else num(o.get('padding', '0'))
                g = num(o.get('groups', '1'))
                bn = num(o.get('batch_normalize', '0'))
                m = nn.Sequential(nn.Conv2d(prev, f, k, st, pad, groups=g, bias=not bn), *( [nn.BatchNorm2d(f, momentum=0.01, eps=1e-5)] if bn else []))
                m.act = act(o.get('activation', 'logistic'))
                out = f
            elif t in ('route',):
                refs = [int(x) for x in o['layers'].split(',')]
                refs = [r if r >= 0 else i + r for r in refs]
                s['refs'] = refs
                gr = num(o.get('groups', '1'))
                out = sum(self.shapes[r] for r in refs) // gr
            elif t == 'shortcut':
                r = int(o['from'].split(',')[0]); s['from'] = r if r >= 0 else i + r
            elif t == 'scale_channels':
                r = int(o['from']); s['from'] = r if r >= 0 else i + r
                out = self.shapes[s['from']]
            elif t in ('yolo',):
                self.heads.append(i)
                s['mask'] = [int(x) for x in o['mask'].split(',')]
                s['classes'] = num(o['classes'])
            self.mods.append(m)
            self.shapes.append(out)

    def forward(self, x):
        outs, heads = [], []
        for i, s in enumerate(self.layers):
            t, o = s['type'], s['opts']
            if t in ('convolutional', 'conv'):
                m = self.mods[i]
                x = m.act(m(x))
            elif t in ('maxpool', 'max'):
                st = num(o.get('stride', '1')); k = num(o.get('size', str(st))); p = num(o.get('padding', str(k - 1)))
                b = p // 2
                x = F.max_pool2d(F.pad(x, (b, p - b, b, p - b), value=-1e30), k, st)
            elif t == 'route':
                gr, gid = num(o.get('groups', '1')), num(o.get('group_id', '0'))
                parts = []
                for r in s['refs']:
                    y = outs[r]
                    cc = y.shape[1] // gr
                    parts.append(y[:, gid * cc:(gid + 1) * cc])
                x = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
            elif t == 'shortcut':
                x = act(o.get('activation', 'linear'))(x + outs[s['from']])
            elif t == 'upsample':
                x = F.interpolate(x, scale_factor=num(o.get('stride', '2')), mode='nearest')
            elif t in ('avgpool', 'avg'):
                x = x.mean((2, 3), keepdim=True)
            elif t == 'scale_channels':
                x = outs[s['from']] * x
            elif t == 'yolo':
                heads.append(x)
            outs.append(x)
        return heads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('cfg')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--iters', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--channels-last', action='store_true', help='channels_last layout (on a loaded 2-core machine: ~2x faster for yolo-fastest-1.1 forward+backward in one try, 2-4x slower for darkslim-tiny; unproven)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Net(parse_cfg(a.cfg))
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(a.batch, 3, net.h, net.w)
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        heads = net(x)
        loss = 0
        for h in heads:
            # a YOLO-style loss of the same shape of work: BCE on all outputs towards fixed targets
            loss = loss + F.binary_cross_entropy_with_logits(h, torch.zeros_like(h), reduction='sum') / a.batch
        opt.zero_grad()
        loss.backward()
        opt.step()

    net.train()  # batch norm on batch statistics, as the tfjs engine trains
    for _ in range(a.warmup):
        step()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(a.iters):
        step()
    dt = (time.perf_counter() - t) / a.iters
    # CPU time of all the process's threads: on a loaded machine, wall time measures the neighbours too
    cpu = (time.process_time() - c) / a.iters
    params = sum(p.numel() for p in net.parameters())
    print(json.dumps({'imagesPerSecond': a.batch / dt, 'msPerIteration': dt * 1000, 'cpuMsPerIteration': cpu * 1000, 'cpuMsPerImage': cpu * 1000 / a.batch,
                      'threads': a.threads, 'params': params, 'torch': torch.__version__, 'layout': 'channels_last' if a.channels_last else 'nchw'}))


if __name__ == '__main__':
    sys.exit(main())
