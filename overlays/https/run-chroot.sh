#!/bin/sh -eu
systemctl enable pihub-https.service
