"""Measuring the codec: metrics, reference codecs (Opus, Codec2, a PCA linear baseline), the runner
shared by ``audiocodec evaluate`` and ``scripts/benchmark.py``, and the HTML report.

| module | job |
|---|---|
| ``metrics.py`` | PESQ-WB, STOI, ESTOI, SI-SDR, log-mel distance |
| ``codecs.py`` | the ``Codec.run(wav) -> Coded`` interface; the neural codec via compress/decompress |
| ``baselines.py`` / ``ogg.py`` | Opus and Codec2 through their command-line tools; Ogg packet counting |
| ``pca.py`` | the linear (PCA) baseline codec |
| ``runner.py`` | every codec on every clip -> rows and per-codec summaries |
| ``plots.py`` / ``report.py`` | R-D plot, spectrograms, index.html / results.json / results.csv |
| ``latents.py`` | the encoder alone: latents and codes to .npz |
| ``commands.py`` | the ``evaluate`` and ``encode-latents`` subcommands |
"""
