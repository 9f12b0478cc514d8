"""Illegal: downloads at run time (hub download, urllib, a curl subprocess)."""
import subprocess
import urllib.request

from huggingface_hub import hf_hub_download


def fetch_tables():
    path = hf_hub_download(repo_id="someone/ngram-tables", filename="tables.bin")
    urllib.request.urlretrieve("https://example.invalid/extra.bin", "extra.bin")
    subprocess.run("curl -sSL https://example.invalid/more.bin -o more.bin", shell=True)
    return path


if __name__ == "__main__":
    fetch_tables()
