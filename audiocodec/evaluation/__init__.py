"""Measuring the codec: a panel of metrics, reference codecs (Opus, Codec2, a PCA linear baseline), the
runner shared by ``audiocodec evaluate`` and ``scripts/benchmark.py``, and the HTML report.

| module | job |
|---|---|
| ``metrics.py`` / ``mel.py`` | PESQ-WB, ViSQOL, STOI, ESTOI, SI-SDR, log-mel distance; the mel filters |
| ``base.py`` | ``CodecUnderTest.run(wav) -> Coded``: what every codec under evaluation looks like |
| ``codecs.py`` | this codec (plain and hybrid) through compress/decompress; ``make_codecs``, the panel |
| ``product.py`` | the one door into the product: weights, engine, bitrates, ``model_info`` |
| ``baselines.py`` / ``ogg.py`` | Opus and Codec2 through their command-line tools; Ogg packet counting |
| ``pca.py`` | the linear (PCA) baseline codec |
| ``corpus.py`` | the shared speech corpus's manifest: the clips of a split |
| ``runner.py`` | every codec on every clip -> rows and per-codec summaries; the fixed test clips |
| ``tables.py`` | summaries and clip-by-clip comparisons as table cells |
| ``plots.py`` / ``page.py`` / ``report.py`` | R-D plot and spectrograms; index.html; the report folder |
| ``latents.py`` | the encoder alone: latents and codes to .npz |
| ``options.py`` / ``commands.py`` | argument helpers; the ``evaluate`` and ``encode-latents`` subcommands |

Imports go downward only: codecs -> baselines, pca -> base; report -> page -> tables -> metrics; report -> runner
-> base, metrics; nothing here imports the CLI layer or the training code.
"""
