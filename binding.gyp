{
  # SIMD flags go only on the translation units that need them: each ISA level is its own
  # static library, and native/cpu.cc decides at run time which of their functions to call.
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20", "-O0", "-O2"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "cflags!": ["-O0", "-O2"],
    "cflags": ["-O3"],
    "include_dirs": ["native"],
    "defines": ["NAPI_VERSION=8"]
  },
  "targets": [
    {
      "target_name": "deltasync",
      "sources": [
        "native/addon.cc",
        "native/cpu.cc",
        "native/signature_builder.cc",
        "native/match_index.cc",
        "native/matcher.cc",
        "native/weak.cc",
        "native/weak_neon.cc",
        "native/search.cc",
        "native/search_neon.cc",
        "native/fileops.cc",
        "native/format/status.cc",
        "native/format/magic.cc",
        "native/format/delta_decoder.cc",
        "native/format/signature_format.cc",
        "native/format/apply.cc",
        "native/format/binding.cc",
        "native/protocol/frames.cc",
        "native/protocol/file_list.cc",
        "native/protocol/messages.cc",
        "native/protocol/binding.cc",
        "native/hash/strong.cc",
        "native/hash/xxh3.cc",
        "native/hash/md4.cc",
        "native/hash/blake2b.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "dependencies": ["deltasync_avx2", "deltasync_avx512"]
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64' or target_arch=='ia32'", {
      "targets": [
        {
          "target_name": "deltasync_avx2",
          "type": "static_library",
          "cflags_cc": ["-mavx2", "-msse4.1"],
          "sources": ["native/hash/xxh3_avx2.cc", "native/weak_avx2.cc", "native/search_avx2.cc"]
        },
        {
          "target_name": "deltasync_avx512",
          "type": "static_library",
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx2"],
          "sources": ["native/hash/xxh3_avx512.cc", "native/weak_avx512.cc", "native/search_avx512.cc"]
        }
      ]
    }]
  ]
}
