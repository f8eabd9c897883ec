"""``python -m fairaudit ...`` (also ``torchrun --nproc_per_node N -m fairaudit run spec.yaml``)."""

from fairaudit.cli.app import main

if __name__ == "__main__":
    main()
