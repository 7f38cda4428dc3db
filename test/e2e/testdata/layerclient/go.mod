module layerclient

go 1.26
