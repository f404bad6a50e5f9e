/**
 * Node.js platform setup, imported first by the Node entry (src/index.ts) and the CLI, never by the browser
 * entry: registers the native C++ backend when its addon is built (it becomes the default backend) and installs
 * file access by path (strings given to loaders are then paths; without it they are URLs), with memory-mapped
 * reads of tensors where the addon provides them.
 */
import { registerBackend } from "./backend/index.js";
import { nativeAddon, nativeBackend } from "./backend/native/index.js";
import { nodeFileSystem, setFileMapper } from "./io/node-files.js";
import { setFileSystem } from "./io/source.js";

if (nativeBackend) registerBackend(nativeBackend);
setFileSystem(nodeFileSystem);
// checkpoint tensors become views of memory-mapped files where the addon can map them
const mapFile = nativeAddon?.mapFile?.bind(nativeAddon);
if (mapFile) setFileMapper(mapFile);

import "./backend/webgpu/node-gpu.js";
