// tests/deploy holds two small Go programs, helmrender and deploycheck, built by helm_check.sh offline in
// GOPATH mode (GO111MODULE=off) against Debian's packaged sources in /usr/share/gocode. This file is what
// lets GOPATH mode resolve the /v3 import paths of sprig and semver ("minimal module compatibility" applies
// to importers that sit below a go.mod); it lists no requirements on purpose: nothing is downloaded.
module mqtt2pg-deploy

go 1.19
