"""The baseline family: the challenge's naive-baseline GPT in the int8 + zlib container (see `family`)."""
