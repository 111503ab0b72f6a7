<?php
// kumo's web application example: notes kept in MariaDB on another node.
// The database settings (and its password) are in /etc/webapp/db.php,
// written by the recipe, readable by root and Apache only.
$c = require '/etc/webapp/db.php';
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$db = new mysqli($c['host'], $c['user'], $c['password'], $c['name']);
$db->query('CREATE TABLE IF NOT EXISTS notes (
    id INT AUTO_INCREMENT PRIMARY KEY,
    text VARCHAR(200) NOT NULL,
    web VARCHAR(64) NOT NULL,
    at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)');
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $s = $db->prepare('INSERT INTO notes (text, web) VALUES (?, ?)');
    $text = substr($_POST['text'] ?? '', 0, 200);
    $web = gethostname();
    $s->bind_param('ss', $text, $web);
    $s->execute();
    header('Location: ./', true, 303);
    exit;
}
$notes = $db->query('SELECT id, text, web FROM notes ORDER BY id')->fetch_all(MYSQLI_ASSOC);
?><!doctype html>
<title>Notes</title>
<h1>Notes</h1>
<p>Served by <?= htmlspecialchars(gethostname()) ?>, database <?= htmlspecialchars($db->server_info) ?> on <?= htmlspecialchars($c['host']) ?>.</p>
<form method="post"><input name="text" maxlength="200"> <button>Add</button></form>
<ul>
<?php foreach ($notes as $n): ?>
<li id="note-<?= $n['id'] ?>"><?= htmlspecialchars($n['text']) ?> <small>(via <?= htmlspecialchars($n['web']) ?>)</small></li>
<?php endforeach ?>
</ul>
