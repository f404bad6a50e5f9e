/**
 * Node.js platform setup, imported first by the Node entry (src/index.ts) and the CLI, never by the browser
 * entry: registers the native C++ backend when its addon is built (it becomes the default backend) and installs
 * file access by path (strings given to loaders are then paths; without it they are URLs).
 */
import { registerBackend } from "./backend/index.js";
import { nativeBackend } from "./backend/native/index.js";
import { nodeFileSystem } from "./io/node-files.js";
import { setFileSystem } from "./io/source.js";

if (nativeBackend) registerBackend(nativeBackend);
setFileSystem(nodeFileSystem);

import "./backend/webgpu/node-gpu.js";
