"""Dataset readers and the training data pipeline (SLP, BodyPressureSD, synthetic shards).

* :mod:`~disrt_core.data.source`: the one sample interface and the ``Source`` base class;
* :mod:`~disrt_core.data.slp` (SLP danaLab/simLab), :mod:`~disrt_core.data.bodymap` (BodyMAP's
  SMPL fits of SLP), :mod:`~disrt_core.data.bodypressure` (BodyPressureSD),
  :mod:`~disrt_core.data.synthetic` (the generator's shards, format in
  :mod:`~disrt_core.data.shards`);
* :mod:`~disrt_core.data.labels`: the 162-number label vector and x0 (SPEC §1);
* :mod:`~disrt_core.data.splits`: SLP subject splits and the Table 1 fractions;
* :mod:`~disrt_core.data.dataset`: mixing, streaming, resumable ``DataPipeline``;
* :mod:`~disrt_core.data.augment`: SPEC §5 augmentations;
* :mod:`~disrt_core.data.fixtures`: miniature datasets in the originals' formats.
"""
