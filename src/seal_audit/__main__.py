"""``python -m seal_audit`` runs the ``seal`` command."""

from seal_audit._cli import main

if __name__ == "__main__":
    main()
