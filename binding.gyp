{
  "targets": [
    {
      "target_name": "interprocess",
      "sources": [
        "native/binding.cc",
        "native/fd.cc",
        "native/shm.cc",
        "native/ipckey.cc",
        "native/waiter.cc",
        "native/msg.cc",
        "native/mqueue.cc",
        "native/sem.cc",
        "native/poll.cc",
        "native/futex.cc",
        "native/mutex.cc",
        "native/doorbell.cc",
        "native/socket.cc",
        "native/release.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
          }
        }]
      ]
    }
  ]
}
