#!/bin/sh -e
systemctl enable pihub-https.service
