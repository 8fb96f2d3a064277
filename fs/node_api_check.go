package fs

import "github.com/hanwen/go-fuse/v2/fs"

// Every operation each node and handle implements, checked at compile time.
var (
	_ = (fs.NodeGetattrer)((*rootNode)(nil))
	_ = (fs.NodeLookuper)((*rootNode)(nil))
	_ = (fs.NodeReaddirer)((*rootNode)(nil))
	_ = (fs.NodeStatfser)((*rootNode)(nil))

	_ = (fs.NodeGetattrer)((*rawDir)(nil))
	_ = (fs.NodeLookuper)((*rawDir)(nil))
	_ = (fs.NodeReaddirer)((*rawDir)(nil))

	_ = (fs.NodeGetattrer)((*dirNode)(nil))
	_ = (fs.NodeLookuper)((*dirNode)(nil))
	_ = (fs.NodeReaddirer)((*dirNode)(nil))
	_ = (fs.NodeGetxattrer)((*dirNode)(nil))
	_ = (fs.NodeListxattrer)((*dirNode)(nil))

	_ = (fs.NodeGetattrer)((*fileNode)(nil))
	_ = (fs.NodeOpener)((*fileNode)(nil))
	_ = (fs.NodeGetxattrer)((*fileNode)(nil))
	_ = (fs.NodeListxattrer)((*fileNode)(nil))
	_ = (fs.FileReader)((*fileHandle)(nil))
	_ = (fs.FileReleaser)((*fileHandle)(nil))

	_ = (fs.NodeGetattrer)((*rawNode)(nil))
	_ = (fs.NodeOpener)((*rawNode)(nil))
	_ = (fs.NodeGetxattrer)((*rawNode)(nil))
	_ = (fs.NodeListxattrer)((*rawNode)(nil))
	_ = (fs.FileReader)((rawHandle)(nil))

	_ = (fs.NodeGetattrer)((*symlinkNode)(nil))
	_ = (fs.NodeReadlinker)((*symlinkNode)(nil))
)
