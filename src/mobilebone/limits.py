"""Input-size limits shared by every command and loader (one definition, imported without torch).

Below 32 px the five stride-2 stages of every backbone leave less than one pixel. 2048 px is 4.5x the
largest published eval size (448 px); one 3x2048x2048 float image is 48 MiB, so a batch fits an ordinary
machine, while an edited config or flag asking for 100000 px (a 120 GB batch) is refused before anything
is allocated.
"""

MIN_INPUT_SIZE = 32
MAX_INPUT_SIZE = 2048
