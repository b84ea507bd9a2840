"""doctor checks the programs a component's build runs, as the shell it runs in would find them."""

import pytest

from devloop.commands.doctor import build_programs


@pytest.mark.parametrize(
    ("command", "programs"),
    [
        ("make function-controller CONTROLLER_IMAGE={image}", {"make"}),
        ("cd stable/python && docker build -t {image} -f Dockerfile.3.8 .", {"docker"}),
        ("GOOS=linux CGO_ENABLED=0 go build ./... && docker build -t {image} .", {"go", "docker"}),
        ("export X=1; make -C a build | tee log", {"make", "tee"}),
        ("exec ./build.sh {image}", {"./build.sh"}),
        ("true", set()),
        ("if [ -f x ]; then docker build -t {image} .; else make image IMAGE={image}; fi", {"docker", "make"}),
    ],
)
def test_the_programs_of_a_build_command(command, programs):
    assert build_programs(command) == programs
