"""Command-line tools around rosbags: ``disrt-replay``, ``disrt-record``, ``disrt-slp2bag``,
``disrt-synth2bag`` and ``disrt-score`` (one module each, ``main(argv)`` as entry point)."""
