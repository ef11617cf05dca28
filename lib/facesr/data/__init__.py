"""The course data: image files, the degradation (numpy, torch), the data sets, the checker, the sample set.

``images`` (file I/O), ``degradations`` (numpy, the reference pipeline), ``degradations_torch`` (the same
distribution for a torch batch on any device), ``datasets`` (the PyTorch data sets), ``check`` (the layout
and ``check-data``), ``sample`` (the bundled sample set). Import from the module that holds a name.
"""
