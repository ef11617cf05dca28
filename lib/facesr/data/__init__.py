"""The course data: image files, both degradations (numpy, torch), training pairs, the data sets, the checker,
the sample set.

- ``images``: file I/O (decoding to uint8 RGB, atomic PNG writes, header and integrity checks).
- ``degradations``: the 2022/2023 course degradation in numpy, and every blur kernel (docs/course.md section 3).
- ``degradations_torch``: the same distribution for a torch batch on any device.
- ``jpeg_torch``: JPEG round trips in torch: libjpeg's integer codec (as OpenCV) and DiffJPEG (as the 2024 course).
- ``second_order``: the 2024/2025 second-order degradation in torch (docs/course.md section 4).
- ``pairs``: what a DataLoader worker draws for a training sample, and the device half of a batch.
- ``lq_statistics``: what an LQ says about its degradation (noise, blur, sharpness, JPEG blocks, colour shift).
- ``workers``: DataLoader workers that never hang in silence (fork-safe start, timeouts, dead workers).
- ``datasets``: the PyTorch data sets; ``check``: the layout and ``check-data``.
- ``sample`` and ``sample_images``: the bundled sample set of each edition.

Import from the module that holds a name.
"""
