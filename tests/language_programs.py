"""Programs in every language the sandbox offers, shared by the coordinator's integration
tests (the real bubblewrap runner) and the e2e tests (through the API): a hello world, a
runtime error, a compile error, and one snippet per threat of DESIGN §6 (network, fork bomb,
memory, disk, output flood, host files and secrets)."""

from __future__ import annotations

COMPILED = ("c", "c++", "go", "rust", "java", "typescript")
INTERPRETED = ("python", "javascript", "bash", "ruby", "php", "perl", "lua")
LANGUAGES = (*INTERPRETED, *COMPILED)

HELLO = {
    "python": 'print("hello, world")',
    "javascript": 'console.log("hello, world")',
    "bash": 'echo "hello, world"',
    "ruby": 'puts "hello, world"',
    "php": '<?php echo "hello, world\\n";',
    "perl": 'print "hello, world\\n";',
    "lua": 'print("hello, world")',
    "c": '#include <stdio.h>\nint main(void) { puts("hello, world"); return 0; }\n',
    "c++": '#include <iostream>\nint main() { std::cout << "hello, world" << std::endl; }\n',
    "go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello, world") }\n',
    "rust": 'fn main() { println!("hello, world"); }\n',
    "java": (
        "public class Main {\n"
        '    public static void main(String[] args) { System.out.println("hello, world"); }\n'
        "}\n"
    ),
    "typescript": 'const greeting: string = "hello, world";\nconsole.log(greeting);\n',
}

# A program that fails while running: (script, a text its stderr must hold).
RUNTIME_ERROR = {
    "python": ("raise ValueError('boom')", "ValueError: boom"),
    "javascript": ("throw new Error('boom')", "Error: boom"),
    "bash": ("echo boom >&2; exit 3", "boom"),
    "ruby": ("raise ArgumentError, 'boom'", "boom (ArgumentError)"),
    "php": ("<?php throw new Exception('boom');", "Exception: boom"),
    "perl": ("die 'boom';", "boom at /work/main.pl"),
    "lua": ("error('boom')", "boom"),
    "c": (
        '#include <stdio.h>\nint main(void) { fprintf(stderr, "boom\\n"); return 3; }\n',
        "boom",
    ),
    "c++": (
        '#include <stdexcept>\nint main() { throw std::runtime_error("boom"); }\n',
        "boom",
    ),
    "go": ('package main\n\nfunc main() { panic("boom") }\n', "panic: boom"),
    "rust": ('fn main() { panic!("boom"); }\n', "boom"),
    "java": (
        "public class Main {\n"
        '    public static void main(String[] args) { throw new IllegalStateException("boom"); }\n'
        "}\n",
        "java.lang.IllegalStateException: boom",
    ),
    "typescript": (
        "const n: number = 1;\nif (n > 0) { throw new Error('boom'); }\n",
        "Error: boom",
    ),
}

# Source the compiler refuses: (script, a text of the compiler's message).
COMPILE_ERROR = {
    "c": ("int main(void) { return undefined_name; }\n", "undefined_name"),
    "c++": ("int main() { std::string s; }\n", "string"),
    "go": ('package main\n\nfunc main() { var x int = "s" }\n', "cannot use"),
    "rust": ('fn main() { let x: i32 = "s"; }\n', "mismatched types"),
    "java": (
        'public class Main { public static void main(String[] a) { int x = "s"; } }\n',
        "incompatible types",
    ),
    "typescript": ('const x: number = "s";\nconsole.log(x);\n', "TS2322"),
}

SECRET = "hunter2-do-not-leak"
PORT = "{port}"  # replaced by the host listener's port

C_INCLUDES = (
    "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n"
    "#include <arpa/inet.h>\n#include <sys/socket.h>\n"
)
GO_MAIN = "package main\n\nimport (\n{imports})\n\nfunc main() {{\n{body}}}\n"


def _go(imports: tuple[str, ...], body: str) -> str:
    return GO_MAIN.format(imports="".join(f'\t"{i}"\n' for i in imports), body=body)


def _java(body: str, imports: str = "") -> str:
    return (
        f"{imports}public class Main {{\n"
        f"    public static void main(String[] args) throws Exception {{\n{body}    }}\n}}\n"
    )


TS_DECLARE = "declare const require: any, process: any, Buffer: any;\n"

NETWORK = {
    "python": (
        "import socket\ntry:\n"
        f"    socket.create_connection(('127.0.0.1', {PORT}), timeout=2).close()\n"
        "    print('CONNECTED')\nexcept OSError:\n    print('blocked')\n"
    ),
    "javascript": (
        f"const s = require('net').connect({{host: '127.0.0.1', port: {PORT}}});\n"
        "s.on('connect', () => { console.log('CONNECTED'); s.destroy(); });\n"
        "s.on('error', () => console.log('blocked'));\n"
    ),
    "typescript": (
        TS_DECLARE + f"const s = require('net').connect({{host: '127.0.0.1', port: {PORT}}});\n"
        "s.on('connect', () => { console.log('CONNECTED'); s.destroy(); });\n"
        "s.on('error', () => console.log('blocked'));\n"
    ),
    "bash": f"(exec 3<>/dev/tcp/127.0.0.1/{PORT}) 2>/dev/null && echo CONNECTED || echo blocked",
    "ruby": (
        "require 'socket'\nbegin\n"
        f"  TCPSocket.new('127.0.0.1', {PORT}).close\n  puts 'CONNECTED'\n"
        "rescue SystemCallError\n  puts 'blocked'\nend\n"
    ),
    "php": (
        f"<?php $s = @fsockopen('127.0.0.1', {PORT}, $errno, $errstr, 2);\n"
        'echo $s ? "CONNECTED\\n" : "blocked\\n";\n'
    ),
    "perl": (
        "use IO::Socket::INET;\n"
        "my $s = IO::Socket::INET->new(\n"
        f"    PeerAddr => '127.0.0.1', PeerPort => {PORT}, Timeout => 2);\n"
        'print $s ? "CONNECTED\\n" : "blocked\\n";\n'
    ),
    # Lua's standard library has no sockets: its way out is a shell, tried here.
    "lua": (
        f"local ok = os.execute(\"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{PORT}' 2>/dev/null\")\n"
        "print((ok == true or ok == 0) and 'CONNECTED' or 'blocked')\n"
    ),
    "c": (
        C_INCLUDES + "int main(void) {\n"
        "  int s = socket(AF_INET, SOCK_STREAM, 0);\n"
        "  struct sockaddr_in a = {0}; a.sin_family = AF_INET;\n"
        f"  a.sin_port = htons({PORT}); a.sin_addr.s_addr = htonl(0x7f000001);\n"
        '  puts(connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? "CONNECTED" : "blocked");\n'
        "  return 0;\n}\n"
    ),
    "c++": (
        C_INCLUDES + "int main() {\n"
        "  int s = socket(AF_INET, SOCK_STREAM, 0);\n"
        "  sockaddr_in a{}; a.sin_family = AF_INET;\n"
        f"  a.sin_port = htons({PORT}); a.sin_addr.s_addr = htonl(0x7f000001);\n"
        '  puts(connect(s, (sockaddr *)&a, sizeof a) == 0 ? "CONNECTED" : "blocked");\n}\n'
    ),
    "go": _go(
        ("fmt", "net", "time"),
        f'\tc, err := net.DialTimeout("tcp", "127.0.0.1:{PORT}", 2*time.Second)\n'
        '\tif err != nil {\n\t\tfmt.Println("blocked")\n\t\treturn\n\t}\n'
        '\tc.Close()\n\tfmt.Println("CONNECTED")\n',
    ),
    "rust": (
        "fn main() {\n"
        f'    match std::net::TcpStream::connect("127.0.0.1:{PORT}") {{\n'
        '        Ok(_) => println!("CONNECTED"),\n        Err(_) => println!("blocked"),\n'
        "    }\n}\n"
    ),
    "java": _java(
        f'        try (java.net.Socket s = new java.net.Socket("127.0.0.1", {PORT})) {{\n'
        '            System.out.println("CONNECTED");\n'
        '        } catch (java.io.IOException e) { System.out.println("blocked"); }\n'
    ),
}

FORK_BOMB = {
    "python": "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(60)\n",
    "javascript": (
        "const cp = require('child_process');\n"
        "for (let i = 0; i < 500; i++) cp.spawn('/usr/bin/sleep', ['60'], {stdio: 'ignore'});\n"
    ),
    "typescript": (
        TS_DECLARE + "const cp = require('child_process');\n"
        "for (let i = 0; i < 500; i++) cp.spawn('/usr/bin/sleep', ['60'], {stdio: 'ignore'});\n"
    ),
    "bash": ":(){ :|:& };:",
    "ruby": "loop { fork { sleep 60 } rescue nil }\n",
    "php": "<?php while (true) { @proc_open(['/usr/bin/sleep', '60'], [], $pipes); }\n",
    "perl": "while (1) { my $pid = fork; if (defined $pid && $pid == 0) { sleep 60; exit } }\n",
    "lua": "while true do io.popen('/usr/bin/sleep 60') end\n",
    "c": "#include <unistd.h>\nint main(void) { for (;;) if (fork() == 0) sleep(60); }\n",
    "c++": "#include <unistd.h>\nint main() { for (;;) if (fork() == 0) sleep(60); }\n",
    "go": _go(("os/exec",), '\tfor {\n\t\t_ = exec.Command("/usr/bin/sleep", "60").Start()\n\t}\n'),
    "rust": (
        "fn main() {\n    let mut kept = Vec::new();\n    loop {\n"
        '        if let Ok(c) = std::process::Command::new("/usr/bin/sleep").arg("60").spawn() {\n'
        "            kept.push(c);\n        }\n    }\n}\n"
    ),
    "java": _java(
        "        while (true) {\n"
        "            new Thread(() -> { try { Thread.sleep(60000); }"
        " catch (InterruptedException e) {} }).start();\n"
        "        }\n"
    ),
}

MEMORY_BOMB = {
    "python": "x = b'x' * (1 << 30)\nprint(len(x))\n",
    "javascript": "const b = Buffer.alloc(1 << 30, 1); console.log(b.length)\n",
    "typescript": TS_DECLARE + "const b = Buffer.alloc(1 << 30, 1); console.log(b.length)\n",
    "bash": "x=$(head -c 1073741824 /dev/zero | tr '\\0' x); echo ${#x}",
    "ruby": "x = 'x' * (1 << 30)\nputs x.size\n",
    "php": "<?php $x = str_repeat('x', 1 << 30); echo strlen($x), \"\\n\";\n",
    "perl": "my $x = 'x' x (1 << 30);\nprint length($x), \"\\n\";\n",
    "lua": "local x = string.rep('x', 1 << 30)\nprint(#x)\n",
    "c": (
        C_INCLUDES + "int main(void) { size_t n = 1u << 30; char *p = malloc(n);\n"
        "  if (!p) return 1; memset(p, 1, n);\n"
        '  __asm__ volatile("" : : "r"(p) : "memory");\n'
        '  printf("%d\\n", p[n - 1]); return 0; }\n'
    ),
    "c++": (
        "#include <vector>\n#include <cstdio>\n"
        "int main() { std::vector<char> v(1u << 30, 1);\n"
        '  __asm__ volatile("" : : "r"(v.data()) : "memory");\n'
        '  std::printf("%d\\n", v.back()); }\n'
    ),
    "go": _go(
        ("fmt",),
        "\tb := make([]byte, 1<<30)\n\tfor i := range b {\n\t\tb[i] = 1\n\t}\n"
        "\tfmt.Println(len(b))\n",
    ),
    "rust": (
        "fn main() {\n    let v = vec![1u8; 1 << 30];\n"  # filled with 1s: every page touched
        '    println!("{}", v[v.len() - 1]);\n}\n'
    ),
    "java": _java("        byte[] b = new byte[1 << 30];\n        System.out.println(b.length);\n"),
}

DISK_FILL = {
    "python": (
        "with open('/work/big', 'wb') as f:\n"
        "    for _ in range(1024):\n        f.write(b'x' * (1 << 20))\nprint('wrote')\n"
    ),
    "javascript": (
        "const fs = require('fs'); const fd = fs.openSync('/work/big', 'w');\n"
        "const mb = Buffer.alloc(1 << 20, 120);\n"
        "for (let i = 0; i < 1024; i++) fs.writeSync(fd, mb);\nconsole.log('wrote')\n"
    ),
    "typescript": (
        TS_DECLARE + "const fs = require('fs'); const fd = fs.openSync('/work/big', 'w');\n"
        "const mb = Buffer.alloc(1 << 20, 120);\n"
        "for (let i = 0; i < 1024; i++) fs.writeSync(fd, mb);\nconsole.log('wrote')\n"
    ),
    "bash": "head -c 1073741824 /dev/zero > /work/big && echo wrote",
    "ruby": (
        "File.open('/work/big', 'wb') { |f| 1024.times { f.write('x' * (1 << 20)) } }\n"
        "puts 'wrote'\n"
    ),
    "php": (
        "<?php $f = fopen('/work/big', 'wb'); $mb = str_repeat('x', 1 << 20);\n"
        "for ($i = 0; $i < 1024; $i++) { if (fwrite($f, $mb) === false) exit(1); }\n"
        'echo "wrote\\n";\n'
    ),
    "perl": (
        "open(my $f, '>', '/work/big') or die; my $mb = 'x' x (1 << 20);\n"
        'for (1 .. 1024) { print $f $mb or die "write: $!" }\nclose($f) or die "close: $!";\n'
        'print "wrote\\n";\n'
    ),
    "lua": (
        "local f = assert(io.open('/work/big', 'wb'))\nlocal mb = string.rep('x', 1 << 20)\n"
        "for i = 1, 1024 do assert(f:write(mb)) end\nassert(f:close())\nprint('wrote')\n"
    ),
    "c": (
        C_INCLUDES + 'int main(void) { FILE *f = fopen("/work/big", "wb");\n'
        "  static char mb[1 << 20];\n"
        "  for (int i = 0; i < 1024; i++) if (fwrite(mb, 1, sizeof mb, f) != sizeof mb) return 1;\n"
        '  fclose(f); puts("wrote"); return 0; }\n'
    ),
    "c++": (
        "#include <fstream>\n#include <iostream>\n#include <vector>\n"
        'int main() { std::ofstream f("/work/big", std::ios::binary);\n'
        "  std::vector<char> mb(1 << 20, 'x');\n"
        "  for (int i = 0; i < 1024; i++) { f.write(mb.data(), mb.size()); if (!f) return 1; }\n"
        '  std::cout << "wrote" << std::endl; }\n'
    ),
    "go": _go(
        ("fmt", "os"),
        '\tf, _ := os.Create("/work/big")\n\tmb := make([]byte, 1<<20)\n'
        "\tfor i := 0; i < 1024; i++ {\n\t\tif _, err := f.Write(mb); err != nil {\n"
        '\t\t\tpanic(err)\n\t\t}\n\t}\n\tfmt.Println("wrote")\n',
    ),
    "rust": (
        "use std::io::Write;\nfn main() {\n"
        '    let mut f = std::fs::File::create("/work/big").unwrap();\n'
        "    let mb = vec![b'x'; 1 << 20];\n"
        "    for _ in 0..1024 { f.write_all(&mb).unwrap(); }\n"
        '    println!("wrote");\n}\n'
    ),
    "java": _java(
        '        try (var f = new java.io.FileOutputStream("/work/big")) {\n'
        "            byte[] mb = new byte[1 << 20];\n"
        "            for (int i = 0; i < 1024; i++) f.write(mb);\n        }\n"
        '        System.out.println("wrote");\n'
    ),
}

OUTPUT_FLOOD = {
    "python": "while True:\n    print('x' * 1000)\n",
    "javascript": (
        "const fs = require('fs');\nconst line = 'x'.repeat(1000) + '\\n';\n"
        "while (true) fs.writeSync(1, line);\n"
    ),
    "typescript": (
        TS_DECLARE + "const fs = require('fs');\nconst line = 'x'.repeat(1000) + '\\n';\n"
        "while (true) fs.writeSync(1, line);\n"
    ),
    "bash": "yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "ruby": "line = 'x' * 1000\nloop { puts line }\n",
    "php": "<?php $line = str_repeat('x', 1000) . \"\\n\"; while (true) echo $line;\n",
    "perl": "my $line = 'x' x 1000;\nwhile (1) { print \"$line\\n\" }\n",
    "lua": "local line = string.rep('x', 1000)\nwhile true do print(line) end\n",
    "c": '#include <stdio.h>\nint main(void) { for (;;) puts("xxxxxxxxxxxxxxxxxxxxxxxx"); }\n',
    "c++": '#include <cstdio>\nint main() { for (;;) std::puts("xxxxxxxxxxxxxxxxxxxxxxxx"); }\n',
    "go": _go(
        ("bufio", "os", "strings"),
        '\tw := bufio.NewWriter(os.Stdout)\n\tline := strings.Repeat("x", 1000) + "\\n"\n'
        "\tfor {\n\t\tif _, err := w.WriteString(line); err != nil {\n\t\t\treturn\n\t\t}\n\t}\n",
    ),
    "rust": (
        "use std::io::Write;\nfn main() {\n    let out = std::io::stdout();\n"
        '    let mut out = out.lock();\n    let line = "x".repeat(1000);\n'
        '    loop { if writeln!(out, "{}", line).is_err() { return; } }\n}\n'
    ),
    "java": _java(
        '        String line = "x".repeat(1000);\n'
        "        while (!System.out.checkError()) System.out.println(line);\n"
    ),
}

HOST_FILES = {
    "python": (
        "import os\ntry:\n    open('/etc/shadow').read()\n    print('READ')\n"
        "except OSError:\n    print('denied')\n"
        "print(os.environ.get('INTEGR8SCODE_TEST_SECRET', 'unset'))\n"
    ),
    "javascript": (
        "try { require('fs').readFileSync('/etc/shadow'); console.log('READ'); }\n"
        "catch (e) { console.log('denied'); }\n"
        "console.log(process.env.INTEGR8SCODE_TEST_SECRET || 'unset');\n"
    ),
    "typescript": (
        TS_DECLARE + "try { require('fs').readFileSync('/etc/shadow'); console.log('READ'); }\n"
        "catch (e) { console.log('denied'); }\n"
        "console.log(process.env.INTEGR8SCODE_TEST_SECRET || 'unset');\n"
    ),
    "bash": (
        "cat /etc/shadow >/dev/null 2>&1 && echo READ || echo denied\n"
        'echo "${INTEGR8SCODE_TEST_SECRET:-unset}"\n'
    ),
    "ruby": (
        "begin\n  File.read('/etc/shadow')\n  puts 'READ'\nrescue SystemCallError\n"
        "  puts 'denied'\nend\nputs ENV.fetch('INTEGR8SCODE_TEST_SECRET', 'unset')\n"
    ),
    "php": (
        '<?php echo @file_get_contents(\'/etc/shadow\') === false ? "denied\\n" : "READ\\n";\n'
        "echo getenv('INTEGR8SCODE_TEST_SECRET') ?: 'unset', \"\\n\";\n"
    ),
    "perl": (
        "print open(my $f, '<', '/etc/shadow') ? \"READ\\n\" : \"denied\\n\";\n"
        "print $ENV{INTEGR8SCODE_TEST_SECRET} // 'unset', \"\\n\";\n"
    ),
    "lua": (
        "print(io.open('/etc/shadow', 'r') and 'READ' or 'denied')\n"
        "print(os.getenv('INTEGR8SCODE_TEST_SECRET') or 'unset')\n"
    ),
    "c": (
        C_INCLUDES + "int main(void) {\n"
        '  puts(fopen("/etc/shadow", "r") ? "READ" : "denied");\n'
        '  const char *s = getenv("INTEGR8SCODE_TEST_SECRET"); puts(s ? s : "unset");\n}\n'
    ),
    "c++": (
        C_INCLUDES + "int main() {\n"
        '  puts(fopen("/etc/shadow", "r") ? "READ" : "denied");\n'
        '  const char *s = getenv("INTEGR8SCODE_TEST_SECRET"); puts(s ? s : "unset");\n}\n'
    ),
    "go": _go(
        ("fmt", "os"),
        '\tif _, err := os.ReadFile("/etc/shadow"); err != nil {\n\t\tfmt.Println("denied")\n'
        '\t} else {\n\t\tfmt.Println("READ")\n\t}\n'
        '\tif s, ok := os.LookupEnv("INTEGR8SCODE_TEST_SECRET"); ok {\n\t\tfmt.Println(s)\n'
        '\t} else {\n\t\tfmt.Println("unset")\n\t}\n',
    ),
    "rust": (
        "fn main() {\n"
        '    let read = std::fs::read("/etc/shadow").is_ok();\n'
        '    println!("{}", if read { "READ" } else { "denied" });\n'
        '    println!("{}", std::env::var("INTEGR8SCODE_TEST_SECRET")'
        '.unwrap_or("unset".into()));\n}\n'
    ),
    "java": _java(
        '        try { java.nio.file.Files.readAllBytes(java.nio.file.Path.of("/etc/shadow"));\n'
        '            System.out.println("READ");\n'
        '        } catch (java.io.IOException e) { System.out.println("denied"); }\n'
        '        String s = System.getenv("INTEGR8SCODE_TEST_SECRET");\n'
        '        System.out.println(s == null ? "unset" : s);\n'
    ),
}

THREATS = {
    "network": NETWORK,
    "fork_bomb": FORK_BOMB,
    "memory_bomb": MEMORY_BOMB,
    "disk_fill": DISK_FILL,
    "output_flood": OUTPUT_FLOOD,
    "host_files": HOST_FILES,
}
