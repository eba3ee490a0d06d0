// Command importer depends on vulnlib but calls none of its vulnerable
// functions.
package main

import (
	"fmt"

	"example.test/vulnlib"
)

func main() {
	fmt.Println(vulnlib.Version())
}
