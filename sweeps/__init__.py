"""Ray Tune + Optuna sweeps over Diffusion-QL (built in the sweeps issue)."""
