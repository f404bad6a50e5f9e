"""The PyTorch CUDA side of the GPU bench (bench/gpu/run.sh): the same cases as bench/gpu/time.ts, in float16 on
the GPU with diffusers' models built from their configs (random weights), printed as one JSON object.

    PYTHONPATH=<diffusers>/src python3 bench/gpu/torch_peer.py
"""
import json
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel, UNet2DModel

REPS = 5
dev = "cuda"
torch.manual_seed(0)


def timed(fn, warmup=1):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"best": times[0], "median": times[len(times) // 2]}


result = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
with torch.no_grad():
    # SD 1.5's released UNet config (the diffusers defaults are SD 1.x's, with 8 heads of attention_head_dim 8)
    unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8).half().to(dev).eval()
    sample = torch.randn(2, 4, 64, 64, device=dev, dtype=torch.half)
    text = torch.randn(2, 77, 768, device=dev, dtype=torch.half)
    t = torch.tensor([999, 999], device=dev)
    result["unetStep"] = timed(lambda: unet(sample, t, text).sample)
    del unet
    vae = AutoencoderKL(
        block_out_channels=[128, 256, 512, 512],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
    ).half().to(dev).eval()
    z = torch.randn(1, 4, 64, 64, device=dev, dtype=torch.half)
    result["vaeDecode512"] = timed(lambda: vae.decode(z).sample)
    del vae

with open(__file__.replace("torch_peer.py", "../../models/mnist/unet/config.json")) as f:
    cfg = json.load(f)
unet = UNet2DModel.from_config(cfg).to(dev).train()
opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
batch, steps = 64, 20


def train_step():
    x = torch.randn(batch, 1, 32, 32, device=dev)
    noise = torch.randn_like(x)
    ts = torch.randint(0, 1000, (batch,), device=dev)
    labels = torch.randint(0, 11, (batch,), device=dev)
    loss = torch.nn.functional.mse_loss(unet(x + noise, ts, class_labels=labels).sample, noise)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


for _ in range(3):
    train_step()
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(steps):
    train_step()
torch.cuda.synchronize()
seconds = time.perf_counter() - t0
result["mnistTrain"] = {"batch": batch, "steps": steps, "seconds": seconds, "imagesPerSecond": batch * steps / seconds}
print(json.dumps(result))
