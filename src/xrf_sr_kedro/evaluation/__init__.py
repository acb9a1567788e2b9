"""The experiments and tables built from metrics and baselines (no Kedro).

* :mod:`.scoring` -- one estimate against the truth (PSNR, SSIM, FSC all / axial /
  equatorial, Rayleigh pairs);
* :mod:`.projections` -- the 2-D method table (raw, bicubic, Richardson-Lucy, TV,
  networks);
* :mod:`.tuning` -- the TV weight, chosen on a region disjoint from the evaluated sample;
* :mod:`.volumes` -- the 3-D rows (directional FSC with the Crowther limit, Rayleigh
  in 3-D, independent split halves);
* :mod:`.natural_images` -- the networks on unseen natural images against bicubic;
* :mod:`.table`, :mod:`.report` -- columns, Markdown, MLflow metrics, HTML (jinja2).
"""
