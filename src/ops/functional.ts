// The `F` namespace (PyTorch's torch.nn.functional names): `F.conv2d(x, w, b, { stride, padding })`.
export * from "./index.js";
