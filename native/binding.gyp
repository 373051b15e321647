# Builds native/build/Release/cudele_fuse.node, the binding to libfuse3's
# lowlevel API described in src/fuse/native.ts. Flags come from pkg-config
# when it knows fuse3, else from Debian's default locations.
{
  "targets": [
    {
      "target_name": "cudele_fuse",
      "sources": [
        "src/binding.c",
        "src/mount.c",
        "src/ops.c",
        "src/dispatch.c",
        "src/replies.c",
        "src/notify.c",
        "src/xattr.c"
      ],
      "defines": [
        "FUSE_USE_VERSION=314",
        "NAPI_VERSION=8",
        "_GNU_SOURCE",
        "_FILE_OFFSET_BITS=64"
      ],
      "cflags_c": [
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        "<!@(pkg-config --cflags fuse3 2>/dev/null || echo -I/usr/include/fuse3)"
      ],
      "libraries": [
        "<!@(pkg-config --libs fuse3 2>/dev/null || echo -lfuse3)",
        "-lpthread"
      ]
    }
  ]
}
