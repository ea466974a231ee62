{
  "targets": [
    {
      "target_name": "darkslim_jpeg",
      "sources": ["jpeg.c"],
      "libraries": ["-ljpeg"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
