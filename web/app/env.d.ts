// Constants the build (scripts/build-web.js) defines.

/** The package version, written into the PNG parameters ("Version: diffuse X"), as the CLI and server write it. */
declare const DIFFUSE_VERSION: string;
