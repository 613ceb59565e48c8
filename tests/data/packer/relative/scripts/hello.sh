#!/bin/sh
echo "relative script ran"
