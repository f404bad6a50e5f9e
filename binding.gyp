# Native CPU backend (N-API addon). Built by scripts/build-native.js (npm install / npm run build:native).
# The x86 SIMD micro-kernels live in their own static libraries so only those files get -mavx2/-mavx512f; the
# addon picks a kernel at run time from the CPU's features, and everything else is portable C++17.
{
  "variables": {
    "diffuse_x86%": "<!(node -p \"process.arch === 'x64' && process.platform !== 'win32' ? 1 : 0\")"
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions", "-O2"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
    "cflags": ["-O3", "-fPIC"],
    "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fexceptions"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "GCC_OPTIMIZATION_LEVEL": "3",
      "MACOSX_DEPLOYMENT_TARGET": "10.15"
    },
    "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17", "/O2"] } },
    "conditions": [["diffuse_x86==1", { "defines": ["DIFFUSE_HAVE_X86_KERNELS"] }]]
  },
  "targets": [
    {
      "target_name": "diffuse_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/attention.cc",
        "native/src/conv.cc",
        "native/src/elementwise.cc",
        "native/src/gemm.cc",
        "native/src/geglu.cc",
        "native/src/norm.cc",
        "native/src/parallel.cc",
        "native/src/mapfile.cc",
        "native/src/pool.cc",
        "native/src/reduce.cc",
        "native/src/scratch.cc",
        "native/src/upsample.cc",
        "native/src/vmath.cc",
        "native/src/winograd.cc",
        "native/src/winograd4.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["diffuse_x86==1", { "dependencies": ["diffuse_avx2", "diffuse_avx512"] }],
        ["OS=='linux'", { "libraries": ["-lpthread"] }]
      ]
    }
  ],
  "conditions": [
    [
      "diffuse_x86==1",
      {
        "targets": [
          {
            "target_name": "diffuse_avx2",
            "type": "static_library",
            "sources": ["native/src/gemm_avx2.cc", "native/src/pack_avx2.cc", "native/src/vmath_avx2.cc", "native/src/winograd_avx2.cc"],
            "cflags_cc": ["-mavx2", "-mfma", "-mf16c"],
            "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mf16c"] }
          },
          {
            "target_name": "diffuse_avx512",
            "type": "static_library",
            "sources": ["native/src/gemm_avx512.cc", "native/src/attention_avx512.cc", "native/src/pack_avx512.cc", "native/src/winograd_avx512.cc", "native/src/winograd4_avx512.cc", "native/src/vmath_avx512.cc", "native/src/norm_avx512.cc"],
            "cflags_cc": ["-mavx512f", "-mfma"],
            "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mfma"] }
          }
        ]
      }
    ]
  ]
}
