#!/usr/bin/python3
"""PyTorch port of the official NeuroMask algorithm (nesl/neuromask,
neuromask.py), used as the faithfulness reference for neuromask's C code.

    neuromask_ref.py --model M.onnx | --torchvision NAME  --image IMG
                     --preset cifar|imagenet --steps N --seed S --outdir DIR

Writes to DIR: x.bin (the preprocessed pixel-space input [1,C,H,W] in [0,1],
float32), w0.bin (initial mask weights [H,W]), loss.bin (total loss per step,
before each update), mask.bin (final sigmoid(w/T)), model.onnx (for
--torchvision) and meta.txt ("key value" lines the C test reads).
"""
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PRESETS = {  # l_pred, l_sparse, l_smooth, T, kernel
    "cifar": (0.4, 0.35, 0.15, 1.0, 3),
    "imagenet": (0.4, 0.35, 0.03, 0.3, 5),
}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def laplacian(k):
    K = -torch.ones(1, 1, k, k)
    K[0, 0, k // 2, k // 2] = k * k - 1
    return K


class RMSPropTF1:
    """tf.train.RMSPropOptimizer defaults: decay 0.9, momentum 0, eps 1e-10, ms = 1."""

    def __init__(self, w, lr):
        self.w, self.lr = w, lr
        self.ms = torch.ones_like(w)

    def step(self):
        g = self.w.grad
        self.ms.mul_(0.9).add_(0.1 * g * g)
        with torch.no_grad():
            self.w -= self.lr * g / torch.sqrt(self.ms + 1e-10)
        self.w.grad = None


def neuromask(model, x, mean, std, preset, steps, w0, target=None):
    l_pred, l_sparse, l_smooth, T, k = PRESETS[preset]
    L = 10.0
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        logits = model((x - mean) / std)
    c = int(logits.argmax(1)) if target is None else target
    w = w0.clone().requires_grad_(True)
    opt = RMSPropTF1(w, 0.03)
    K = laplacian(k)
    losses = []
    for _ in range(steps):
        m = torch.sigmoid(w / T)
        z = (x * m - mean) / std
        out = model(z)
        pred = F.cross_entropy(out, torch.tensor([c]))
        sparse = (w + L).abs().mean()
        smooth = F.conv2d(w[None, None], K).pow(2).mean()
        loss = l_pred * pred + l_sparse * sparse + l_smooth * smooth
        loss.backward()
        losses.append(float(loss))
        opt.step()
    return c, np.array(losses, np.float32), torch.sigmoid(w / T).detach()


def load_model(args):
    if args.model:
        import onnx_torch
        return onnx_torch.OnnxTorch(args.model), args.model
    import torchvision
    torch.manual_seed(args.seed)
    net = getattr(torchvision.models, args.torchvision)().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    path = os.path.join(args.outdir, "model.onnx")
    torch.onnx.export(net, torch.zeros(1, 3, 224, 224), path, input_names=["input"],
                      output_names=["logits"], opset_version=13)
    return net, path


def load_image(path, size):
    img = Image.open(path).convert("RGB")
    if img.size != (size, size):
        import torchvision.transforms as T
        img = T.CenterCrop(size)(T.Resize(int(size * 256 / 224))(img))
    return torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--torchvision")
    ap.add_argument("--image", required=True)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--preset", default="cifar", choices=PRESETS)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outdir", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.outdir, exist_ok=True)
    model, model_path = load_model(args)
    x = load_image(args.image, args.size)
    g = torch.Generator().manual_seed(args.seed)
    w0 = (torch.rand(args.size, args.size, generator=g) * 2 - 1) * 10.0
    c, losses, mask = neuromask(model, x, IMAGENET_MEAN, IMAGENET_STD, args.preset, args.steps, w0)
    for name, arr in (("x", x), ("w0", w0), ("loss", losses), ("mask", mask)):
        np.asarray(arr, np.float32).tofile(os.path.join(args.outdir, name + ".bin"))
    with open(os.path.join(args.outdir, "meta.txt"), "w") as f:
        f.write(f"model {os.path.abspath(model_path)}\npreset {args.preset}\nsteps {args.steps}\n"
                f"size {args.size}\ntarget {c}\n")
    print(f"target {c}: loss {losses[0]:.4f} -> {losses[-1]:.4f}, mask mean {float(mask.mean()):.4f}")


if __name__ == "__main__":
    main()
