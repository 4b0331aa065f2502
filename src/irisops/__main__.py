from irisops.cli import app

app(prog_name="irisops")
