from kubefence.cli import run

run()
