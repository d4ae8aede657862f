#!/bin/sh
echo "@GREETING@ from a Dockerfile, you said: $(cat)"
